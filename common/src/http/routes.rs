//! The JSON API of one entity kind under `/api/{kind}` (CONTRACT §3), for any service.

use actix_web::{HttpRequest, HttpResponse, Scope, http::header, web};
use serde::Serialize;
use serde_json::{Value, json};

use super::{body::JsonFields, request_id::context};
use crate::{Entity, EntityService, Error, Page};

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

/// The routes of kind `E` served by `service`: list, create, get, replace, delete, plus the
/// kind's `health` and `openapi.json`. A service may add more routes to the scope.
pub fn entity_scope<E: JsonEntity, S: EntityService<E>>(service: S) -> Scope {
    web::scope(&format!("/api/{}", E::KIND))
        .app_data(web::Data::new(service))
        .route("", web::get().to(list::<E, S>))
        .route("", web::post().to(create::<E, S>))
        .route("/health", web::get().to(health::<E>))
        .route("/openapi.json", web::get().to(openapi::<E>))
        .route("/{id}", web::get().to(get::<E, S>))
        .route("/{id}", web::put().to(update::<E, S>))
        .route("/{id}", web::delete().to(delete::<E, S>))
}

/// Reads `limit` and `offset` from a query string.
pub fn page_from_query(query: &str) -> Result<Page, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Error::BadRequest(format!("malformed query string: {e}")))?;
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    Page::from_query(value("limit"), value("offset"))
}

async fn list<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    service: web::Data<S>,
) -> Result<HttpResponse, Error> {
    let page = page_from_query(req.query_string())?;
    let items = service.list(&context(&req), page).await?;
    Ok(HttpResponse::Ok().json(Data { data: items }))
}

async fn get<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<S>,
) -> Result<HttpResponse, Error> {
    let id = E::parse_id(&path)?;
    let entity = service.get(&context(&req), &id).await?;
    Ok(HttpResponse::Ok().json(Data { data: entity }))
}

async fn create<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<S>,
) -> Result<HttpResponse, Error> {
    let mut fields = super::body::json_object(&req, payload).await?;
    if fields.take("id").is_some() {
        fields.problem("id", "must not be given: the server assigns ids");
    }
    let input = E::read_input(&mut fields);
    fields.finish()?;
    let draft = E::parse_draft(input)?;
    let entity = service.create(&context(&req), draft).await?;
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
) -> Result<HttpResponse, Error> {
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
    let entity = service.update(&context(&req), &id, draft).await?;
    Ok(HttpResponse::Ok().json(Data { data: entity }))
}

async fn delete<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<S>,
) -> Result<HttpResponse, Error> {
    let id = E::parse_id(&path)?;
    service.delete(&context(&req), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn health<E: Entity>() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": format!("{} alive", E::KIND) }))
}

async fn openapi<E: JsonEntity>() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::document::<E>())
}
