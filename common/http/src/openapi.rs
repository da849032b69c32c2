//! The OpenAPI 3 document of an entity's API (docs/behaviour.md §3): every route under
//! `/api/{kind}`, every status each can answer, ids and paging with their real formats and
//! bounds, and links from a created entity to what can be done with it (which schema-driven
//! tools follow to test sequences of calls).

use serde_json::{Map, Value, json};

use nis_core::Page;

use super::{routes::JsonEntity, schema};

/// The OpenAPI document served at `/api/{kind}/openapi.json`.
pub fn document<E: JsonEntity>() -> Value {
    let (kind, one, other) = (E::KIND, E::SINGULAR, E::OTHER_KIND);
    let entity_ref = json!({ "$ref": format!("#/components/schemas/{one}") });
    let input_ref = json!({ "$ref": format!("#/components/schemas/{one}_input") });
    let body =
        json!({ "required": true, "content": { "application/json": { "schema": input_ref } } });
    let id_param = json!({
        "name": "id", "in": "path", "required": true, "schema": schema::id::<E::Id>(),
        "description": format!("The {one}'s id (percent-decoded before it is read)"),
    });
    let follow = |operations: &[&str]| -> Value {
        operations
            .iter()
            .map(|op| {
                let operation = format!("{op}_{one}");
                (operation.clone(), json!({ "operationId": operation, "parameters": { "id": "$response.body#/data/id" } }))
            })
            .collect::<Map<_, _>>()
            .into()
    };
    let ok = |status_text: &str, schema: Value, links: Option<Value>| {
        let mut response = success(status_text, schema);
        if let Some(links) = links {
            response["links"] = links;
        }
        response
    };
    let other_id_param = json!({
        "name": "other_id", "in": "path", "required": true, "schema": schema::id::<E::OtherId>(),
        "description": format!("The id of the {} to link or unlink", other),
    });
    let unique = E::UNIQUE_RULE.map(error);
    let write_errors = |with_id: bool| {
        let mut responses = errors(&[
            (
                "400",
                if with_id {
                    "Malformed id, or the body is not JSON or repeats a key"
                } else {
                    "The body is not JSON or repeats a key"
                },
            ),
            ("413", "Body over 64 KiB"),
            (
                "415",
                "Content-Type is not application/json (charset, if any, utf-8)",
            ),
            (
                "422",
                "Field rules broken, an unknown field, a wrong type, or an id in the body (POST) or unlike the path's (PUT); `details` names each field",
            ),
        ]);
        if with_id {
            responses.insert("404".into(), error(&format!("No such {one}")));
            responses.insert("412".into(), precondition_failed(one));
        } else {
            responses.insert(
                "422".into(),
                error("Field rules broken, an unknown field, a wrong type, or an id in the body (`validation_failed`, `details` names each field); or the Idempotency-Key was used for another request (`idempotency_key_reused`)"),
            );
        }
        if let Some(unique) = &unique {
            responses.insert("409".into(), unique.clone());
        }
        responses
    };
    let mut create = write_errors(false);
    let mut created = ok(
        "Created; `Location` is its URL",
        entity_ref.clone(),
        Some(follow(&["get", "replace", "delete", "list_linked_to"])),
    );
    // The description must not begin with the path itself: schemathesis infers links from any
    // response text that starts like a `Location`, this document's own included.
    created["headers"]["Location"] = json!({
        "required": true,
        "schema": { "type": "string", "format": "uri-reference" },
        "description": format!("The new {one}'s path: /api/{kind}/ and its id"),
    });
    created["headers"]["ETag"] = etag_header();
    created["headers"]["Idempotent-Replayed"] = json!({
        "schema": { "type": "string", "enum": ["true"] },
        "description": "Present when the request was made before with this Idempotency-Key: this is the first answer again, nothing was created",
    });
    create.insert("201".into(), created);
    let mut replace = write_errors(true);
    let mut replaced = ok(
        "Replaced",
        entity_ref.clone(),
        Some(follow(&["get", "delete"])),
    );
    replaced["headers"]["ETag"] = etag_header();
    replace.insert("200".into(), replaced);
    let mut found = ok(
        "Found",
        entity_ref.clone(),
        Some(follow(&["replace", "delete"])),
    );
    found["headers"]["ETag"] = etag_header();
    let mut read = errors(&[("400", "Malformed id"), ("404", &format!("No such {one}"))]);
    read.insert("200".into(), found);
    read.insert(
        "304".into(),
        json!({
            "description": "If-None-Match names the current version: not modified, no body",
            "headers": { "ETag": etag_header() },
        }),
    );
    let mut link_answers = errors(&[
        ("400", "Malformed id"),
        ("404", &format!("No such {one}")),
        (
            "422",
            &format!("The {one} holds as many {other} as it may (`details` names the field)"),
        ),
    ]);
    link_answers.insert("412".into(), precondition_failed(one));
    link_answers.insert(
        "204".into(),
        json!({ "description": "Done (also when it already was)", "headers": {
            "ETag": etag_header(),
            "x-request-id": request_id_header()["x-request-id"],
        } }),
    );
    let link_answers = with_server_errors(link_answers);

    let linked_item = json!({
        "type": "object",
        "required": ["id"],
        "properties": { "id": schema::id::<E::OtherId>() },
        "description": format!("A {other} entity as the {other} API shows it (see its document at /api/{other}/openapi.json)"),
    });

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": format!("nis {kind} API"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Errors share one body: {\"error\": {\"code\", \"message\", \"details\"?}}. Every response carries `x-request-id`. A known path asked with a method it does not have is 405 with `Allow`; OPTIONS is 204 with `Allow`; HEAD is GET without the body.",
        },
        "paths": {
            format!("/api/{kind}"): {
                "get": {
                    "operationId": format!("list_{kind}"),
                    "summary": format!("List {kind}, oldest first"),
                    "parameters": paging(Page::DEFAULT_LIMIT),
                    "responses": with_errors(
                        ok("A page", json!({ "type": "array", "items": entity_ref }), None),
                        &[("400", "Bad limit or offset, or one given twice")],
                    ),
                },
                "post": {
                    "operationId": format!("create_{one}"),
                    "summary": format!("Create a {one}"),
                    "parameters": [idempotency_key_param()],
                    "requestBody": body,
                    "responses": with_server_errors(create),
                }
            },
            format!("/api/{kind}/{{id}}"): {
                "parameters": [id_param],
                "get": {
                    "operationId": format!("get_{one}"),
                    "summary": format!("Read a {one}"),
                    "parameters": [if_none_match_param()],
                    "responses": with_server_errors(read),
                },
                "put": {
                    "operationId": format!("replace_{one}"),
                    "summary": "Full replacement; an omitted id list means empty. Without If-Match the last writer wins",
                    "parameters": [if_match_param()],
                    "requestBody": body,
                    "responses": with_server_errors(replace),
                },
                "delete": {
                    "operationId": format!("delete_{one}"),
                    "summary": format!("Delete a {one}"),
                    "parameters": [if_match_param()],
                    "responses": with_errors_and(
                        "204",
                        json!({ "description": "Deleted", "headers": request_id_header() }),
                        &[
                            ("400", "Malformed id"),
                            ("404", &format!("No such {one}")),
                            ("412", "If-Match names no current version"),
                        ],
                    ),
                }
            },
            format!("/api/{kind}/{{id}}/{other}/{{other_id}}"): {
                "parameters": [id_param, other_id_param],
                "put": {
                    "operationId": format!("link_{one}"),
                    "summary": format!("Add one {} to this {one}'s list, leaving the others as they are (idempotent)", other.trim_end_matches('s')),
                    "parameters": [if_match_param()],
                    "responses": link_answers,
                },
                "delete": {
                    "operationId": format!("unlink_{one}"),
                    "summary": format!("Remove one {} from this {one}'s list (idempotent)", other.trim_end_matches('s')),
                    "parameters": [if_match_param()],
                    "responses": link_answers,
                }
            },
            format!("/api/{kind}/{{id}}/{other}"): {
                "parameters": [id_param],
                "get": {
                    "operationId": format!("list_linked_to_{one}"),
                    "summary": format!("The {other} that list this {one}, asked of the {other} service"),
                    "parameters": paging(Page::MAX_LIMIT),
                    "responses": with_errors(
                        ok("A page", json!({ "type": "array", "items": linked_item }), None),
                        &[
                            ("400", "Malformed id, bad limit or offset"),
                            ("404", &format!("No such {one}")),
                        ],
                    ),
                }
            },
            format!("/api/{kind}/health"): {
                "get": {
                    "operationId": format!("{kind}_health"),
                    "summary": "The service answers",
                    "responses": { "200": {
                        "description": "Alive",
                        "headers": request_id_header(),
                        "content": { "application/json": { "schema": {
                            "type": "object", "required": ["message"],
                            "properties": { "message": { "type": "string", "enum": [format!("{kind} alive")] } } } } }
                    } }
                }
            },
            format!("/api/{kind}/openapi.json"): {
                "get": {
                    "operationId": format!("{kind}_openapi"),
                    "summary": "This document",
                    "responses": { "200": {
                        "description": "The OpenAPI 3 document",
                        "headers": request_id_header(),
                        "content": { "application/json": { "schema": { "type": "object", "required": ["openapi", "paths"] } } }
                    } }
                }
            }
        },
        "components": {
            "schemas": {
                one: entity_schema::<E>(),
                format!("{one}_input"): input_schema::<E>(),
                "error": error_schema(),
            }
        }
    })
}

/// The entity as the API shows it.
fn entity_schema<E: JsonEntity>() -> Value {
    let fields = E::fields();
    let mut properties = Map::new();
    let mut id = schema::id::<E::Id>();
    id["readOnly"] = json!(true);
    properties.insert("id".into(), id);
    for field in &fields {
        properties.insert(field.name.into(), field.shown.clone());
    }
    let required: Vec<&str> = std::iter::once("id")
        .chain(fields.iter().map(|f| f.name))
        .collect();
    json!({ "type": "object", "required": required, "properties": properties })
}

/// A create or replacement body.
fn input_schema<E: JsonEntity>() -> Value {
    let fields = E::fields();
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_owned(), f.input.clone()))
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `limit` (1..=500, `default_limit` when absent) and `offset` (0..=2⁶³−1).
fn paging(default_limit: u32) -> Value {
    json!([
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": Page::MAX_LIMIT, "default": default_limit } },
        { "name": "offset", "in": "query", "schema": { "type": "integer", "format": "int64", "minimum": 0, "maximum": Page::MAX_OFFSET, "default": 0 } }
    ])
}

fn etag_header() -> Value {
    json!({
        "required": true,
        "schema": { "type": "string", "pattern": "^\"[0-9]+\"$" },
        "description": "The entity's version as a strong entity tag; changes with every change, links applied from the other side included",
    })
}

fn precondition_failed(one: &str) -> Value {
    error(&format!(
        "If-Match names no current version of the {one} (`precondition_failed`): read it again"
    ))
}

fn if_match_param() -> Value {
    json!({
        "name": "If-Match", "in": "header", "required": false,
        "schema": { "type": "string" },
        "description": "Write only if the entity is at one of these versions (its ETag), or exists (`*`); else 412. A value that is not a list of entity tags names no version",
    })
}

fn if_none_match_param() -> Value {
    json!({
        "name": "If-None-Match", "in": "header", "required": false,
        "schema": { "type": "string" },
        "description": "304 without a body when the entity is at one of these versions (weak comparison), or exists (`*`). A value that is not a list of entity tags names no version",
    })
}

fn idempotency_key_param() -> Value {
    json!({
        "name": "Idempotency-Key", "in": "header", "required": false,
        "schema": { "type": "string", "pattern": "^[!-~]{1,255}$" },
        "description": "Makes the create idempotent for 24 h (by default): made again with the same key and body, it answers the first answer again (with Idempotent-Replayed); with another body, 422 idempotency_key_reused",
    })
}

fn request_id_header() -> Value {
    json!({ "x-request-id": {
        "required": true,
        "schema": { "type": "string", "pattern": "^[!-~]{1,128}$" },
        "description": "The caller's id when it is 1–128 printable ASCII characters without spaces, else a new UUID",
    } })
}

fn success(description: &str, data: Value) -> Value {
    json!({
        "description": description,
        "headers": request_id_header(),
        "content": { "application/json": { "schema": {
            "type": "object", "required": ["data"], "properties": { "data": data }
        } } }
    })
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "headers": request_id_header(),
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/error" } } }
    })
}

fn errors(cases: &[(&str, &str)]) -> Map<String, Value> {
    cases
        .iter()
        .map(|(status, description)| ((*status).to_owned(), error(description)))
        .collect()
}

/// `responses` plus the 500 and 503 every operation can answer.
fn with_server_errors(mut responses: Map<String, Value>) -> Value {
    responses.extend(errors(&[
        (
            "500",
            "An unexpected failure (details are logged, not shown)",
        ),
        ("503", "A dependency this request needs is down or too slow"),
    ]));
    responses.into()
}

/// The `200` of an operation, its own errors, and the server errors.
fn with_errors(ok: Value, cases: &[(&str, &str)]) -> Value {
    with_errors_and("200", ok, cases)
}

/// The success `status` of an operation, its own errors, and the server errors.
fn with_errors_and(status: &str, ok: Value, cases: &[(&str, &str)]) -> Value {
    let mut responses = errors(cases);
    responses.insert(status.into(), ok);
    with_server_errors(responses)
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": { "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "string", "enum": [
                    "bad_request", "validation_failed", "not_found", "conflict",
                    "precondition_failed", "idempotency_key_reused",
                    "method_not_allowed", "payload_too_large", "unsupported_media_type",
                    "unavailable", "internal"
                ] },
                "message": { "type": "string" },
                "details": { "type": "array", "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                } }
            }
        } }
    })
}
