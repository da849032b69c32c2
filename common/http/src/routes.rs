//! The JSON API of one entity kind under `/api/{kind}` (docs/behaviour.md §3), for any service.

use actix_web::{HttpRequest, HttpResponse, Scope, http::header, web};
use serde::Serialize;
use serde_json::json;

use nis_core::{Entity, EntityService, Error, Page, idempotency, peer::Peer, service::LinkEdit};

use super::{
    body::JsonFields, conditional, error::ApiError, request_id::context, resource,
    schema::FieldSchema,
};

/// An entity the HTTP API can read from JSON and describe in OpenAPI.
pub trait JsonEntity: Entity {
    /// What makes a create or replacement conflict with a stored entity (the 409 of the
    /// OpenAPI document), if anything can.
    const UNIQUE_RULE: Option<&'static str> = None;

    /// Takes the entity's fields (not `id`) from a request body.
    fn read_input(fields: &mut JsonFields) -> Self::Input;

    /// The entity's fields besides `id`, in order, for the OpenAPI document (built with
    /// [`schema::text`](crate::schema::text) and [`schema::id_list`](crate::schema::id_list)).
    fn fields() -> Vec<FieldSchema>;
}

/// The success envelope: `{"data": ...}`.
#[derive(Debug, Serialize)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

/// The routes of kind `E` served by `service`: list, create, get, replace, delete, the cross
/// query `/{id}/{other kind}` answered by `peer`, one link `/{id}/{other kind}/{other id}` set
/// (PUT) or removed (DELETE), and the kind's `health` and `openapi.json`.
pub fn entity_scope<E: JsonEntity, S: EntityService<E>, P: Peer>(service: S, peer: P) -> Scope {
    const READ: &str = "GET, HEAD, OPTIONS";
    web::scope(&format!("/api/{}", E::KIND))
        .app_data(web::Data::new(service))
        .app_data(web::Data::new(peer))
        .service(
            resource::get(resource::at("", "GET, HEAD, POST, OPTIONS"), list::<E, S>)
                .route(web::post().to(create::<E, S>)),
        )
        .service(resource::get(resource::at("/health", READ), health::<E>))
        .service(resource::get(
            resource::at("/openapi.json", READ),
            openapi::<E>,
        ))
        .service(
            resource::get(
                resource::at("/{id}", "GET, HEAD, PUT, DELETE, OPTIONS"),
                get::<E, S>,
            )
            .route(web::put().to(update::<E, S>))
            .route(web::delete().to(delete::<E, S>)),
        )
        .service(resource::get(
            resource::at(&format!("/{{id}}/{}", E::OTHER_KIND), READ),
            linked::<E, S, P>,
        ))
        .service(
            resource::at(
                &format!("/{{id}}/{}/{{other}}", E::OTHER_KIND),
                "PUT, DELETE, OPTIONS",
            )
            .route(web::put().to(link::<E, S, true>))
            .route(web::delete().to(link::<E, S, false>)),
        )
}

/// Reads `limit` and `offset` from a query string; `default_limit` when `limit` is absent.
/// Other parameters are ignored; `limit` or `offset` given twice is a bad request, since a
/// gateway or cache may read the other value than this service would.
pub fn page_from_query(query: &str, default_limit: u32) -> Result<Page, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Error::BadRequest(format!("malformed query string: {e}")))?;
    let value = |name: &str| {
        let values: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        match values[..] {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(Error::BadRequest(format!(
                "`{name}` is given more than once"
            ))),
        }
    };
    let default = default_limit.to_string();
    Page::from_query(Some(value("limit")?.unwrap_or(&default)), value("offset")?)
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
    let etag = (header::ETAG, conditional::etag(entity.version()));
    if conditional::not_modified(&req, entity.version()) {
        return Ok(HttpResponse::NotModified().insert_header(etag).finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header(etag)
        .json(Data { data: entity }))
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
    let key = conditional::idempotency_key(&req)?;
    let created = service.create_keyed(&context(&req), draft, key).await?;
    let entity = created.value;
    let mut response = HttpResponse::Created();
    response
        .insert_header((
            header::LOCATION,
            format!("/api/{}/{}", E::KIND, entity.id()),
        ))
        .insert_header((header::ETAG, conditional::etag(entity.version())));
    if created.replayed {
        response.insert_header((idempotency::REPLAYED_HEADER, "true"));
    }
    Ok(response.json(Data { data: entity }))
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
    let expected = conditional::expected(&req);
    let entity = service
        .update_if(&context(&req), &id, draft, expected)
        .await?
        .value;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, conditional::etag(entity.version())))
        .json(Data { data: entity }))
}

async fn delete<E: JsonEntity, S: EntityService<E>>(
    req: HttpRequest,
    path: web::Path<String>,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let id = E::parse_id(&path)?;
    let expected = conditional::expected(&req);
    service.delete_if(&context(&req), &id, expected).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets (`LINKED`, PUT) or removes (DELETE) one link of entity `id`, leaving its other links
/// as they are: 204 with the entity's new `ETag`, also when the link was already as asked.
async fn link<E: JsonEntity, S: EntityService<E>, const LINKED: bool>(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    service: web::Data<S>,
) -> Result<HttpResponse, ApiError> {
    let (id, other) = path.into_inner();
    let id = E::parse_id(&id)?;
    let other = other
        .parse::<E::OtherId>()
        .map_err(|e| Error::BadRequest(format!("malformed {} id: {e}", E::OTHER_KIND)))?;
    let expected = conditional::expected(&req);
    let edit = LinkEdit {
        other,
        linked: LINKED,
    };
    let version = service
        .set_link(&context(&req), &id, edit, expected)
        .await?
        .value;
    Ok(HttpResponse::NoContent()
        .insert_header((header::ETAG, conditional::etag(version)))
        .finish())
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
