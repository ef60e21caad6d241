//! The CLI's HTTP client: log in once for a token, then send SQL with `Authorization: Bearer`.
//! Blocking (ureq); every answer is read with a size limit and parsed as the API's JSON.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use strand_broker::api::{LoginRequest, LoginResponse, SqlRequest, SqlSuccess};
use strand_broker::error::ErrorBody;
use strand_broker::limits::{CLI_REQUEST_TIMEOUT_MS, CLI_RESPONSE_BYTES_MAX};

use super::ConnectArgs;

/// What the server said to one SQL request, with the raw JSON for `--json`.
pub enum Reply {
    Success(SqlSuccess, Value),
    Failure(ErrorBody, Value),
}

/// A logged-in connection to one server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: String,
}

impl Client {
    /// Log in with the user and password of `args`.
    pub fn login(args: &ConnectArgs) -> anyhow::Result<Client> {
        let password = args.password()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(CLI_REQUEST_TIMEOUT_MS)))
            .build()
            .into();
        let mut client = Client {
            agent,
            base: args.url.trim_end_matches('/').to_string(),
            authorization: String::new(),
        };
        let request = LoginRequest {
            username: args.user.clone(),
            password,
        };
        let (status, body) = client.post("/v1/api/auth/login", &serde_json::to_value(request)?)?;
        if status != 200 {
            let error: ErrorBody = serde_json::from_value(body)
                .with_context(|| format!("login failed with HTTP {status}"))?;
            bail!("login as {} failed: {}", args.user, error.error.message);
        }
        let login: LoginResponse =
            serde_json::from_value(body).context("unexpected login answer")?;
        client.authorization = format!("Bearer {}", login.token);
        Ok(client)
    }

    /// Run `sql` (one or more statements) on the server.
    pub fn execute(&self, sql: &str) -> anyhow::Result<Reply> {
        let request = SqlRequest {
            sql: sql.to_string(),
            params: Vec::new(),
            bigint: None,
        };
        let (status, body) = self.post("/v1/api/sql", &serde_json::to_value(request)?)?;
        if status == 200 {
            let success = serde_json::from_value(body.clone()).context("unexpected SQL answer")?;
            return Ok(Reply::Success(success, body));
        }
        let error = serde_json::from_value(body.clone())
            .with_context(|| format!("HTTP {status} without an error body"))?;
        Ok(Reply::Failure(error, body))
    }

    /// POST `body` to `path`: the answer's status and JSON.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url);
        if !self.authorization.is_empty() {
            request = request.header("Authorization", &self.authorization);
        }
        let response = request
            .send_json(body)
            .with_context(|| format!("cannot reach {url}"))?;
        Self::answer(&url, response)
    }

    /// DELETE `path`: the answer's status and JSON.
    pub fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .delete(&url)
            .header("Authorization", &self.authorization)
            .call()
            .with_context(|| format!("cannot reach {url}"))?;
        Self::answer(&url, response)
    }

    fn answer(
        url: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> anyhow::Result<(u16, Value)> {
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(CLI_RESPONSE_BYTES_MAX)
            .read_to_string()
            .with_context(|| format!("reading the answer of {url}"))?;
        let json = serde_json::from_str(&text)
            .with_context(|| format!("HTTP {status} from {url} is not JSON: {text:.200}"))?;
        Ok((status, json))
    }
}
