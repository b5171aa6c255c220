//! Zod-style body validation: collect every issue, answer
//! `400 {"error":"Invalid body","issues":[…]}`.

use serde_json::{Map, Value, json};

use super::reply::Reply;

/// Collects zod-like issues while reading a JSON body.
#[derive(Default)]
pub struct Checker {
    issues: Vec<Value>,
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// A path to a field, as zod reports it.
pub fn at(path: &[Value], key: impl Into<Value>) -> Vec<Value> {
    let mut p = path.to_vec();
    p.push(key.into());
    p
}

impl Checker {
    fn type_issue(&mut self, path: &[Value], expected: &str, got: Option<&Value>) {
        let received = type_name(got);
        let message = if got.is_none() {
            "Required".to_owned()
        } else {
            format!("Expected {expected}, received {received}")
        };
        self.issues.push(json!({
            "code": "invalid_type",
            "expected": expected,
            "received": received,
            "path": path,
            "message": message,
        }));
    }

    pub fn custom(&mut self, path: &[Value], message: &str) {
        self.issues
            .push(json!({ "code": "custom", "path": path, "message": message }));
    }

    /// `value` must be an object.
    pub fn object<'a>(
        &mut self,
        value: Option<&'a Value>,
        path: &[Value],
    ) -> Option<&'a Map<String, Value>> {
        match value {
            Some(Value::Object(map)) => Some(map),
            other => {
                self.type_issue(path, "object", other);
                None
            }
        }
    }

    /// An optional object field (absent is fine; null is not).
    pub fn opt_object<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<&'a Map<String, Value>> {
        obj.get(key)?;
        self.object(obj.get(key), &at(path, key))
    }

    pub fn string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<String> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            other => {
                self.type_issue(&at(path, key), "string", other);
                None
            }
        }
    }

    pub fn opt_string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<String> {
        obj.get(key)?;
        self.string(obj, key, path)
    }

    pub fn boolean(&mut self, obj: &Map<String, Value>, key: &str, path: &[Value]) -> Option<bool> {
        match obj.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            other => {
                self.type_issue(&at(path, key), "boolean", other);
                None
            }
        }
    }

    pub fn opt_boolean(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<bool> {
        obj.get(key)?;
        self.boolean(obj, key, path)
    }

    pub fn opt_number(&mut self, obj: &Map<String, Value>, key: &str, path: &[Value]) {
        match obj.get(key) {
            None | Some(Value::Number(_)) => {}
            other => self.type_issue(&at(path, key), "number", other),
        }
    }

    pub fn array<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<&'a Vec<Value>> {
        match obj.get(key) {
            Some(Value::Array(items)) => Some(items),
            other => {
                self.type_issue(&at(path, key), "array", other);
                None
            }
        }
    }

    pub fn opt_array<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<&'a Vec<Value>> {
        obj.get(key)?;
        self.array(obj, key, path)
    }

    /// A `Record<string, string>`.
    pub fn string_record(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &[Value],
    ) -> Option<Vec<(String, String)>> {
        let record = self.object(obj.get(key), &at(path, key))?;
        let mut out = Vec::with_capacity(record.len());
        for (k, v) in record {
            match v {
                Value::String(s) => out.push((k.clone(), s.clone())),
                other => self.type_issue(&at(&at(path, key), k.as_str()), "string", Some(other)),
            }
        }
        Some(out)
    }

    /// `Ok(())` when no issue was found, else the 400 answer.
    pub fn finish(self) -> Result<(), Reply> {
        self.finish_with(400)
    }

    /// Like `finish`, with another status (the token route answers 422).
    pub fn finish_with(self, status: u16) -> Result<(), Reply> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(Reply::Json(
                status,
                json!({ "error": "Invalid body", "issues": self.issues }),
            ))
        }
    }
}

/// Parses a request body as JSON; an empty or malformed body is an issue.
pub fn parse_json(body: &[u8], status: u16) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|_| {
        let mut checker = Checker::default();
        checker.custom(&[], "Request body is not valid JSON");
        match checker.finish_with(status) {
            Err(reply) => reply,
            Ok(()) => Reply::error(status, "Invalid body"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_missing_and_wrong_types() {
        let body = json!({"contentHash": 1, "selfHosted": "yes"});
        let mut c = Checker::default();
        let obj = c.object(Some(&body), &[]).expect("object");
        assert!(c.string(obj, "contentHash", &[]).is_none());
        assert!(c.opt_boolean(obj, "selfHosted", &[]).is_none());
        assert!(c.opt_string(obj, "userId", &[]).is_none());
        let Err(Reply::Json(400, out)) = c.finish() else {
            panic!("expected a 400")
        };
        assert_eq!(out["error"], "Invalid body");
        assert_eq!(out["issues"].as_array().map(Vec::len), Some(2));
        assert_eq!(out["issues"][0]["path"], json!(["contentHash"]));
        assert_eq!(
            out["issues"][0]["message"],
            "Expected string, received number"
        );
    }

    #[test]
    fn required_message() {
        let body = json!({});
        let mut c = Checker::default();
        let obj = c.object(Some(&body), &[]).expect("object");
        c.string(obj, "imageReference", &[]);
        let Err(Reply::Json(_, out)) = c.finish() else {
            panic!("expected an error")
        };
        assert_eq!(out["issues"][0]["message"], "Required");
        assert_eq!(out["issues"][0]["received"], "undefined");
    }
}
