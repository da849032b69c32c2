//! One path and the methods it answers, the same way for every route of every service
//! (docs/behaviour.md §3): GET also answers HEAD (the same headers, no body), OPTIONS is 204
//! with `Allow`, and any other method is 405 `method_not_allowed` with `Allow`.

use actix_web::{
    FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder,
    http::{Method, header},
    web,
};

use crate::error::ApiError;

/// A resource at `path` whose own methods are `allow` (as in an `Allow` header, e.g.
/// `"GET, HEAD, PUT, DELETE, OPTIONS"`); add its routes with [`get`] and `web::post()` etc.
pub fn at(path: &str, allow: &'static str) -> Resource {
    web::resource(path)
        .route(web::method(Method::OPTIONS).to(move || async move {
            HttpResponse::NoContent()
                .insert_header((header::ALLOW, allow))
                .finish()
        }))
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                message: format!("{} is not allowed on {}", req.method(), req.path()),
                allow,
            })
        }))
}

/// GET and HEAD answered by `handler` (actix sends no body for HEAD).
pub fn get<F, Args>(resource: Resource, handler: F) -> Resource
where
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    resource
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
}
