//! Every route the API serves, in one table: the router finds a request's
//! route through it, and the OpenAPI document (`openapi.json`) describes
//! exactly these routes, each with its access and whether it takes an
//! `Idempotency-Key` (its tests compare the two).

/// What a route does; `handler::dispatch` says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    CreateImport,
    ListImports,
    ImportStatus,
    StartReview,
    DiscardReview,
    RevertImport,
    Template,
    Download,
    OpenApi,
    Page,
    PageScript,
    PageStyle,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The tenant's API key (`Authorization: Bearer` or `x-api-key`).
    ApiKey,
    /// Anyone: the OpenAPI document, the page (it asks for the key), and
    /// the emailed link (its token is its secret).
    Public,
}

/// A route: its method, its path as the OpenAPI document writes it
/// (`{name}` for a parameter, one segment each), who may call it, and
/// whether a retry with the same `Idempotency-Key` gets the first response
/// (`crate::idempotency`).
#[derive(Debug)]
pub(crate) struct RouteSpec {
    pub route: Route,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub idempotent: bool,
}

const fn spec(
    route: Route,
    method: &'static str,
    path: &'static str,
    access: Access,
    idempotent: bool,
) -> RouteSpec {
    RouteSpec {
        route,
        method,
        path,
        access,
        idempotent,
    }
}

use Access::{ApiKey, Public};

pub(crate) const ROUTES: &[RouteSpec] = &[
    spec(Route::CreateImport, "POST", "/imports", ApiKey, true),
    spec(Route::ListImports, "GET", "/imports", ApiKey, false),
    spec(
        Route::ImportStatus,
        "GET",
        "/imports/{job_id}",
        ApiKey,
        false,
    ),
    spec(
        Route::StartReview,
        "POST",
        "/imports/{job_id}/start",
        ApiKey,
        true,
    ),
    spec(
        Route::DiscardReview,
        "POST",
        "/imports/{job_id}/discard",
        ApiKey,
        true,
    ),
    spec(
        Route::RevertImport,
        "POST",
        "/imports/{job_id}/revert",
        ApiKey,
        true,
    ),
    spec(Route::Template, "GET", "/templates/{kind}", ApiKey, false),
    spec(
        Route::Download,
        "GET",
        "/downloads/{tenant}/{job_id}/{token}",
        Public,
        false,
    ),
    spec(Route::OpenApi, "GET", "/openapi.json", Public, false),
    spec(Route::Page, "GET", "/", Public, false),
    spec(Route::PageScript, "GET", "/app.js", Public, false),
    spec(Route::PageStyle, "GET", "/app.css", Public, false),
];

impl RouteSpec {
    /// `POST /imports/{job_id}/start`: the route, whatever its parameters.
    pub(crate) fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn segments(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }
}

/// A request's route, the path segments that matched it and its parameters.
#[derive(Debug)]
pub(crate) struct Matched<'a> {
    pub spec: &'static RouteSpec,
    pub segments: &'a [&'a str],
    params: Vec<(&'static str, &'a str)>,
}

impl<'a> Matched<'a> {
    /// The value of the path's parameter `name` (`""` if it has none).
    pub(crate) fn param(&self, name: &str) -> &'a str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    }
}

/// The route of a request: of the routes of its method, the one whose path
/// is the longest tail of the request's segments (a stage, or a function
/// URL, may put segments before the route's own); `None` if none is.
pub(crate) fn find<'a>(method: &str, segments: &'a [&'a str]) -> Option<Matched<'a>> {
    ROUTES
        .iter()
        .filter(|spec| spec.method == method)
        .filter_map(|spec| {
            let template: Vec<&'static str> = spec.segments().collect();
            // The page is at the root, not at the end of any path.
            if template.is_empty() && !segments.is_empty() {
                return None;
            }
            let tail = segments.get(segments.len().checked_sub(template.len())?..)?;
            let mut params = Vec::new();
            for (&want, &got) in template.iter().zip(tail) {
                match want.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => params.push((name, got)),
                    None if want == got => {}
                    None => return None,
                }
            }
            Some(Matched {
                spec,
                segments: tail,
                params,
            })
        })
        .max_by_key(|m| m.segments.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Option<(Route, Vec<(&'static str, String)>)> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        find(method, &segments).map(|m| {
            let params = m.params.iter().map(|(n, v)| (*n, v.to_string())).collect();
            (m.spec.route, params)
        })
    }

    #[test]
    fn each_route_is_found_with_its_parameters() {
        assert_eq!(
            route("POST", "/imports"),
            Some((Route::CreateImport, vec![]))
        );
        assert_eq!(route("GET", "/imports"), Some((Route::ListImports, vec![])));
        assert_eq!(
            route("GET", "/imports/J1"),
            Some((Route::ImportStatus, vec![("job_id", "J1".into())]))
        );
        assert_eq!(
            route("POST", "/imports/J1/start"),
            Some((Route::StartReview, vec![("job_id", "J1".into())]))
        );
        assert_eq!(
            route("GET", "/downloads/acme/J1/tok"),
            Some((
                Route::Download,
                vec![
                    ("tenant", "acme".into()),
                    ("job_id", "J1".into()),
                    ("token", "tok".into())
                ]
            ))
        );
        assert_eq!(
            route("GET", "/openapi.json"),
            Some((Route::OpenApi, vec![]))
        );
    }

    #[test]
    fn the_page_is_at_the_root_only() {
        assert_eq!(route("GET", "/"), Some((Route::Page, vec![])));
        assert_eq!(route("GET", "/app.js"), Some((Route::PageScript, vec![])));
        assert_eq!(route("GET", "/app.css"), Some((Route::PageStyle, vec![])));
        assert_eq!(route("GET", "/elsewhere"), None);
        assert_eq!(route("POST", "/"), None);
    }

    #[test]
    fn a_prefix_before_the_route_is_passed_over() {
        assert_eq!(
            route("GET", "/prod/imports/J1").map(|r| r.0),
            Some(Route::ImportStatus)
        );
        assert_eq!(
            route("POST", "/2015-03-31/functions/api/imports").map(|r| r.0),
            Some(Route::CreateImport)
        );
    }

    #[test]
    fn the_longest_route_wins_over_a_parameter_that_looks_like_a_route() {
        assert_eq!(
            route("GET", "/downloads/acme/J1/imports").map(|r| r.0),
            Some(Route::Download)
        );
        assert_eq!(
            route("GET", "/imports/openapi.json").map(|r| r.0),
            Some(Route::ImportStatus)
        );
    }

    #[test]
    fn other_methods_and_paths_are_no_route() {
        assert_eq!(route("DELETE", "/imports/J1"), None);
        assert_eq!(route("GET", "/imports/J1/start"), None);
        assert_eq!(route("PUT", "/"), None);
        assert_eq!(route("GET", "/nothing"), None);
    }

    #[test]
    fn every_route_is_listed_once() {
        let keys: std::collections::HashSet<String> = ROUTES.iter().map(RouteSpec::key).collect();
        assert_eq!(keys.len(), ROUTES.len());
    }
}
