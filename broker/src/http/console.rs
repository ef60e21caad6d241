//! The web console at `/`: one page, its stylesheet and its ES modules (the TypeScript SDK's
//! browser build among them), embedded in the binary at compile time, so that `strand serve`
//! alone is enough to look at the data and watch it change, with nothing to install and no
//! copy that can drift from the server it talks to. Owns serving those files and their
//! headers; not what the page does (`broker/console/`). The page is an ordinary client of the
//! public API (login, SQL, the gateway), so these routes need no credentials: the files hold
//! no data.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The page may load scripts, styles and connections from the server only, and nothing inline:
/// a value shown on the page (a row, an error message) can never run as script.
/// Nor may another site frame it (a framed login form invites clickjacking).
const PAGE_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; \
                           script-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file and how it is served.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// The Content-Security-Policy: documents only, scripts and styles run under the page's.
    policy: Option<&'static str>,
}

static ASSETS: [Asset; 13] = [
    Asset {
        path: "/",
        content_type: HTML,
        body: include_str!("../../console/index.html"),
        policy: Some(PAGE_POLICY),
    },
    Asset {
        path: "/console/console.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/console.js"),
        policy: None,
    },
    Asset {
        path: "/console/live-panel.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/live-panel.js"),
        policy: None,
    },
    Asset {
        path: "/console/render.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/render.js"),
        policy: None,
    },
    Asset {
        path: "/console/console.css",
        content_type: CSS,
        body: include_str!("../../console/console.css"),
        policy: None,
    },
    Asset {
        // Written by the SDK's build (`sdk/typescript`, `npm run build:console`), as are
        // the SDK's modules below (a test there fails when they are stale).
        path: "/console/strand-client.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/strand-client.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/connection.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/connection.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/errors.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/errors.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/http.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/http.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/index.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/index.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/live.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/live.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/persist.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/persist.js"),
        policy: None,
    },
    Asset {
        path: "/console/sdk/values.js",
        content_type: JAVASCRIPT,
        body: include_str!("../../console/sdk/values.js"),
        policy: None,
    },
];

/// Whether `path` is one of the console's files (its requests share one metrics label).
pub(super) fn serves(path: &str) -> bool {
    ASSETS.iter().any(|asset| asset.path == path)
}

/// `GET` (and `HEAD`) of each embedded file; other paths fall through to the API's JSON 404.
pub(super) fn routes() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { asset.response() }))
    })
}

impl Asset {
    fn response(&self) -> Response {
        let headers = [
            (CONTENT_TYPE, self.content_type),
            // The files change with the binary: a browser must never run an old console
            // against a new server, so it asks again each time (they are small).
            (CACHE_CONTROL, "no-cache"),
            // A module is run only if served as JavaScript: no guessing from the bytes.
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        let mut response = (headers, self.body).into_response();
        if let Some(policy) = self.policy {
            response
                .headers_mut()
                .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What follows each `marker` in `text` up to `end` (`src="`, `"`: every source).
    fn values_after<'a>(text: &'a str, marker: &str, end: char) -> Vec<&'a str> {
        text.split(marker)
            .skip(1)
            .filter_map(|rest| rest.split(end).next())
            .collect()
    }

    #[test]
    fn every_file_the_page_loads_is_served() {
        let page = &ASSETS[0];
        assert_eq!(page.path, "/");
        let mut loaded = values_after(page.body, "src=\"", '"');
        loaded.extend(values_after(page.body, "href=\"", '"'));
        let local: Vec<&str> = loaded.into_iter().filter(|p| p.starts_with('/')).collect();
        assert!(local.contains(&"/console/console.js"), "{local:?}");
        for path in local {
            assert!(serves(path), "the page loads {path}, which is not served");
        }
    }

    #[test]
    fn every_module_a_module_imports_is_served() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JAVASCRIPT) {
            let dir = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            for import in values_after(asset.body, "from './", '\'') {
                let path = format!("{dir}/{import}");
                assert!(serves(&path), "{} imports {path}, not served", asset.path);
            }
        }
    }

    /// The policy refuses inline code: a page that had some would silently not work.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = ASSETS[0].body.to_ascii_lowercase();
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script type=\"module\" src=\"").count(),
            "every script is a module loaded from a file"
        );
        for inline in ["<style", " style=\"", " onclick=", " onload=", " onsubmit="] {
            assert!(!page.contains(inline), "the page has inline {inline}");
        }
    }
}
