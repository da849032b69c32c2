//! The OpenAPI 3 document of an entity's API, built from its JSON schema.

use serde_json::{Value, json};

use super::routes::JsonEntity;

/// The OpenAPI document served at `/api/{kind}/openapi.json`.
pub fn document<E: JsonEntity>() -> Value {
    let kind = E::KIND;
    let one = E::SINGULAR;
    let entity_ref = json!({ "$ref": format!("#/components/schemas/{one}") });
    let input_ref = json!({ "$ref": format!("#/components/schemas/{one}_input") });
    let data = |schema: Value| json!({ "type": "object", "required": ["data"], "properties": { "data": schema } });
    let ok = |description: &str, schema: Value| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": data(schema) } }
        })
    };
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/error" } } }
        })
    };
    let id_param =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let body =
        json!({ "required": true, "content": { "application/json": { "schema": input_ref } } });
    let mut input = E::schema();
    if let Some(props) = input.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("id");
    }
    if let Some(required) = input.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|f| f != "id");
    }
    input["additionalProperties"] = json!(false);
    json!({
        "openapi": "3.0.3",
        "info": { "title": format!("nis {kind} API"), "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            format!("/api/{kind}"): {
                "get": {
                    "operationId": format!("list_{kind}"),
                    "summary": format!("List {kind}, oldest first"),
                    "parameters": [
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 } },
                        { "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0, "default": 0 } }
                    ],
                    "responses": { "200": ok("A page", json!({ "type": "array", "items": entity_ref })), "400": error("Bad limit or offset") }
                },
                "post": {
                    "operationId": format!("create_{one}"),
                    "summary": format!("Create a {one}"),
                    "requestBody": body,
                    "responses": {
                        "201": ok("Created; `Location` names it", entity_ref.clone()),
                        "400": error("Malformed JSON"), "409": error("Unique rule broken"),
                        "413": error("Body over 64 KiB"), "415": error("Not JSON"), "422": error("Field rules broken")
                    }
                }
            },
            format!("/api/{kind}/{{id}}"): {
                "parameters": [id_param],
                "get": {
                    "operationId": format!("get_{one}"),
                    "responses": { "200": ok("Found", entity_ref.clone()), "400": error("Malformed id"), "404": error("No such entity") }
                },
                "put": {
                    "operationId": format!("replace_{one}"),
                    "summary": "Full replacement; an omitted id list means empty",
                    "requestBody": body,
                    "responses": {
                        "200": ok("Replaced", entity_ref.clone()), "400": error("Malformed id or JSON"),
                        "404": error("No such entity"), "409": error("Unique rule broken"),
                        "413": error("Body over 64 KiB"), "415": error("Not JSON"), "422": error("Field rules broken")
                    }
                },
                "delete": {
                    "operationId": format!("delete_{one}"),
                    "responses": { "204": { "description": "Deleted" }, "400": error("Malformed id"), "404": error("No such entity") }
                }
            },
            format!("/api/{kind}/health"): {
                "get": {
                    "operationId": format!("{kind}_health"),
                    "responses": { "200": { "description": "Alive", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "message": { "type": "string" } } } } } } }
                }
            }
        },
        "components": {
            "schemas": {
                one: E::schema(),
                format!("{one}_input"): input,
                "error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string" },
                            "message": { "type": "string" },
                            "details": { "type": "array", "items": {
                                "type": "object",
                                "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                            } }
                        }
                    } }
                }
            }
        }
    })
}
