//! The web console is served by `strand serve` itself (issue 20): `GET /` is the page, under a
//! Content-Security-Policy that allows only the server's own scripts, styles and connections;
//! its stylesheet and ES modules (the SDK's browser build among them) are under `/console/`,
//! each with its content type (browsers run a module only if it is served as JavaScript),
//! `nosniff` and `no-cache`, and the bytes of the files in `broker/console/`. No credentials
//! are needed for them. Any other path is still the API's JSON 404.

use std::path::Path;
use std::time::Duration;

use strand_tests::AdminServer;

/// The console's files: path served, file in `broker/console/`, content type.
const ASSETS: [(&str, &str, &str); 8] = [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/console/console.js", "console.js", JAVASCRIPT),
    ("/console/live-panel.js", "live-panel.js", JAVASCRIPT),
    ("/console/render.js", "render.js", JAVASCRIPT),
    (
        "/console/console.css",
        "console.css",
        "text/css; charset=utf-8",
    ),
    ("/console/strand-client.js", "strand-client.js", JAVASCRIPT),
    // Two of the SDK's modules (the unit tests in console.rs check every import is served).
    ("/console/sdk/index.js", "sdk/index.js", JAVASCRIPT),
    ("/console/sdk/live.js", "sdk/live.js", JAVASCRIPT),
];
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// What the page's policy allows: its own files and connections, nothing inline.
const PAGE_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; \
                           script-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// Status, the headers this test reads, and the body of `GET url` (no credentials).
struct Served {
    status: u16,
    content_type: Option<String>,
    nosniff: Option<String>,
    cache_control: Option<String>,
    policy: Option<String>,
    body: String,
}

fn fetch(url: &str) -> Served {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent.get(url).call().expect("HTTP exchange");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    Served {
        status: response.status().as_u16(),
        content_type: header("content-type"),
        nosniff: header("x-content-type-options"),
        cache_control: header("cache-control"),
        policy: header("content-security-policy"),
        body: response.body_mut().read_to_string().expect("body"),
    }
}

#[test]
fn console_is_served_at_root() {
    let setup = AdminServer::start();
    let console_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../broker/console");

    for (path, file, content_type) in ASSETS {
        let served = fetch(&setup.server.url(path));
        assert_eq!(served.status, 200, "GET {path}: {}", served.body);
        assert_eq!(
            served.content_type.as_deref(),
            Some(content_type),
            "GET {path}"
        );
        assert_eq!(served.nosniff.as_deref(), Some("nosniff"), "GET {path}");
        assert_eq!(
            served.cache_control.as_deref(),
            Some("no-cache"),
            "GET {path}"
        );
        let on_disk = std::fs::read_to_string(console_dir.join(file)).expect("console file");
        assert!(
            served.body == on_disk,
            "GET {path} is not broker/console/{file}"
        );
    }

    let page = fetch(&setup.server.url("/"));
    assert_eq!(page.policy.as_deref(), Some(PAGE_POLICY));
    assert!(
        page.body
            .contains(r#"<script type="module" src="/console/console.js"></script>"#),
        "{}",
        page.body
    );
    let module = fetch(&setup.server.url("/console/console.js"));
    assert!(
        module
            .body
            .contains("import { createClient, StrandError } from './strand-client.js';"),
        "the console imports the SDK"
    );

    // The console's prefix does not swallow unknown paths, nor other methods.
    let unknown = strand_tests::get(&setup.server.url("/console/nope.js"));
    let message = unknown.assert_error(404, "not_found");
    assert!(message.contains("/console/nope.js"), "{message}");
    let posted = strand_tests::post(&setup.server.url("/"), None, None, b"");
    posted.assert_error(405, "method_not_allowed");

    // Its files are counted under one route label of their own; unknown paths are not.
    let metrics = strand_tests::get(&setup.server.url("/metrics")).text;
    let served = ASSETS.len() + 2;
    let console =
        format!("strand_http_requests_total{{route=\"console\",status=\"200\"}} {served}");
    assert!(metrics.contains(&console), "{console} not in\n{metrics}");
    assert!(
        metrics.contains("strand_http_requests_total{route=\"unmatched\",status=\"404\"} 1"),
        "{metrics}"
    );
}
