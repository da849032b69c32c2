//! The JSON API of one entity kind under `/api/{kind}` (docs/behaviour.md §3), for any service.

use actix_web::{HttpRequest, HttpResponse, Scope, http::header, web};
use serde::Serialize;
use serde_json::{Value, json};

use nis_core::{Entity, EntityService, Error, Page, peer::Peer};

use super::{body::JsonFields, error::ApiError, request_id::context};

/// An entity the HTTP API can read from JSON and describe in OpenAPI.
pub trait JsonEntity: Entity {
    /// Takes the entity's fields (not `id`) from a request body.
    fn read_input(fields: &mut JsonFields) -> Self::Input;
    /// The JSON schema of the entity (an `object` schema with `properties`).
    fn schema() -> Value;
}

/// The success envelope: `{"data": ...}`.
#[derive(Debug, Serialize)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

/// The routes of kind `E` served by `service`: list, create, get, replace, delete, the cross
/// query `/{id}/{other kind}` answered by `peer`, and the kind's `health` and `openapi.json`.
pub fn entity_scope<E: JsonEntity, S: EntityService<E>, P: Peer>(service: S, peer: P) -> Scope {
    // A known path with another method is 405 (JSON), not the app's 404.
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    web::scope(&format!("/api/{}", E::KIND))
        .app_data(web::Data::new(service))
        .app_data(web::Data::new(peer))
        .service(
            resource("")
                .route(web::get().to(list::<E, S>))
                .route(web::post().to(create::<E, S>)),
        )
        .service(resource("/health").route(web::get().to(health::<E>)))
        .service(resource("/openapi.json").route(web::get().to(openapi::<E>)))
        .service(
            resource("/{id}")
                .route(web::get().to(get::<E, S>))
                .route(web::put().to(update::<E, S>))
                .route(web::delete().to(delete::<E, S>)),
        )
        .service(
            resource(&format!("/{{id}}/{}", E::OTHER_KIND)).route(web::get().to(linked::<E, S, P>)),
        )
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.path()
    )))
}

/// Reads `limit` and `offset` from a query string; `default_limit` when `limit` is absent.
pub fn page_from_query(query: &str, default_limit: u32) -> Result<Page, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Error::BadRequest(format!("malformed query string: {e}")))?;
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let default = default_limit.to_string();
    Page::from_query(Some(value("limit").unwrap_or(&default)), value("offset"))
}

async fn list<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let page = page_from_query(req.query_string(), Page::DEFAULT_LIMIT)?;
    let items = service.list(&context(&req), page).await?;
    Ok(HttpResponse::Ok().json(Data { data: items }))
}

async fn get<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let id = E::parse_id(&path)?;
    let entity = service.get(&context(&req), &id).await?;
    Ok(HttpResponse::Ok().json(Data { data: entity }))
}

async fn create<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let mut fields = super::body::json_object(&req, payload).await?;
    if fields.take("id").is_some() {
        fields.problem("id", "must not be given: the server assigns ids");
    }
    let input = E::read_input(&mut fields);
    fields.finish()?;
    let draft = E::parse_draft(input)?;
    let entity = service.create(&context(&req), draft).await?.value;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/{}/{}", E::KIND, entity.id()),
        ))
        .json(Data { data: entity }))
}

async fn update<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let id = E::parse_id(&path)?;
    let mut fields = super::body::json_object(&req, payload).await?;
    if let Some(body_id) = fields.take("id") {
        let same = body_id
            .as_str()
            .and_then(|raw| raw.parse::<E::Id>().ok())
            .is_some_and(|body_id| body_id == id);
        if !same {
            fields.problem("id", "must match the id in the path (or be left out)");
        }
    }
    let input = E::read_input(&mut fields);
    fields.finish()?;
    let draft = E::parse_draft(input)?;
    let entity = service.update(&context(&req), &id, draft).await?.value;
    Ok(HttpResponse::Ok().json(Data { data: entity }))
}

async fn delete<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let id = E::parse_id(&path)?;
    service.delete(&context(&req), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The other kind's entities that link entity `id`: 404 if `id` is unknown here, 503 if the
/// other service does not answer in time. Without `limit`, the whole list (a list holds at
/// most 60).
async fn linked<E: JsonEntity, S: EntityService<E>, P: Peer>(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<S>,
    peer: web::Data<P>,
) -> Result<HttpResponse, ApiError> {
    let id = E::parse_id(&path)?;
    let page = page_from_query(req.query_string(), Page::MAX_LIMIT)?;
    let ctx = context(&req);
    service.get(&ctx, &id).await?;
    let items = peer.linked_to(&ctx, &id.to_string(), page).await?;
    Ok(HttpResponse::Ok().json(Data { data: items }))
}

async fn health<E: Entity>() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": format!("{} alive", E::KIND) }))
}

async fn openapi<E: JsonEntity>() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::document::<E>())
}
