//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! annotations and the request and response types (utoipa).

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Paths, schemas and security of `/v1`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "authtrail",
        description = "Authentication audit analytics: webhook and batch ingest into an immutable Parquet event log, failed-login reports, user timelines and read-only SQL."
    ),
    paths(
        crate::ingest::ingest,
        crate::ingest::okta_verification,
        crate::read::events,
        crate::findings::list,
        crate::findings::one,
        crate::read::failed_logins,
        crate::read::timeline,
        crate::sql::query,
    ),
    components(schemas(
        crate::ingest::IngestResponse,
        crate::ingest::Rejected,
        crate::sql::QueryRequest,
        crate::error::ErrorBody,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "webhook_hmac",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Authtrail-Signature",
                "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\"> with the source's hmac_secret",
            ))),
        );
    }
}

/// The document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}
