//! The page behind the device-login URL: GET shows a button, POST approves
//! the code (what a person does in the dashboard).

use tiny_http::Method;

use crate::db::ApproveError;
use crate::http::Req;
use crate::http::reply::Reply;
use crate::shared::{Shared, lock};

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    )
}

pub fn page(shared: &Shared, req: &Req, code: &str) -> Result<Reply, Reply> {
    if req.method == Method::Get {
        return Ok(Reply::html(
            200,
            page_html(
                "Log in the CLI",
                "<p>A command-line login is waiting for approval.</p>\
                 <form method=\"post\"><button type=\"submit\">Approve</button></form>",
            ),
        ));
    }
    match lock(&shared.store).approve_authorization_code(code, shared.now()) {
        Ok(_) => Ok(Reply::html(
            200,
            page_html(
                "Logged in",
                "<p>You can close this page and return to the terminal.</p>",
            ),
        )),
        Err(ApproveError::Sql(e)) => Err(e.into()),
        Err(e) => {
            let why = match e {
                ApproveError::Expired => "This login link has expired.",
                ApproveError::AlreadyApproved => "This login link was already used.",
                ApproveError::NoUser => "This platform has no user.",
                _ => "This login link is not valid.",
            };
            Err(Reply::html(
                400,
                page_html("Login failed", &format!("<p>{why}</p>")),
            ))
        }
    }
}
