//! The static evaluator: config expressions → [`Val`] trees.

use std::collections::BTreeMap;

use oxc::ast::ast::{
    Argument, ArrayExpression, ArrayExpressionElement, BinaryExpression, ChainElement, Expression,
    LogicalExpression, ObjectExpression, ObjectPropertyKind, PropertyKind, TemplateLiteral,
    UnaryExpression,
};
use oxc::span::{GetSpan, Span};
use oxc::syntax::operator::{BinaryOperator, LogicalOperator, UnaryOperator};

use crate::location::LineIndex;
use crate::module::{Binding, Module, is_process_env, root_identifier, static_member_key};
use crate::value::{Kind, Origin, Val, js_number_to_string};
use crate::{ImportRef, Location};

/// Deeper than this, values are reported as unevaluable instead of recursing further.
const MAX_DEPTH: u32 = 100;

/// One `process.env.NAME` read.
#[derive(Debug, Clone)]
pub(crate) struct EnvRead {
    pub name: String,
    pub location: Location,
    pub present: bool,
}

pub(crate) struct Evaluator<'m, 'b, 'a> {
    module: &'m Module<'b, 'a>,
    lines: &'m LineIndex<'a>,
    env: &'m BTreeMap<String, String>,
    pub env_reads: Vec<EnvRead>,
    resolving: Vec<&'a str>,
}

enum MemberKey {
    Known(String),
    Unknown,
}

impl<'m, 'b, 'a> Evaluator<'m, 'b, 'a> {
    pub(crate) fn new(
        module: &'m Module<'b, 'a>,
        lines: &'m LineIndex<'a>,
        env: &'m BTreeMap<String, String>,
    ) -> Self {
        Self {
            module,
            lines,
            env,
            env_reads: Vec::new(),
            resolving: Vec::new(),
        }
    }

    fn loc(&self, span: Span) -> Location {
        self.lines.location(span.start)
    }

    fn other(&self, span: Span, what: impl Into<String>) -> Val {
        Val::opaque(self.loc(span), what, Origin::Other)
    }

    fn code(&self, span: Span) -> String {
        format!("`{}`", self.module.snippet(span))
    }

    pub(crate) fn eval(&mut self, expr: &Expression<'a>, depth: u32) -> Val {
        let expr = expr.get_inner_expression();
        let span = expr.span();
        let loc = self.loc(span);
        if depth > MAX_DEPTH {
            return self.other(span, "nested too deeply to evaluate");
        }
        let d = depth + 1;
        match expr {
            Expression::BooleanLiteral(b) => Val::new(loc, Kind::Bool(b.value)),
            Expression::NullLiteral(_) => Val::new(loc, Kind::Null),
            Expression::NumericLiteral(n) => Val::new(loc, Kind::Number(n.value)),
            Expression::StringLiteral(s) => Val::new(loc, Kind::Str(s.value.to_string())),
            Expression::TemplateLiteral(t) => self.eval_template(t, d),
            Expression::Identifier(id) => self.eval_ident(id.name.as_str(), span, d),
            Expression::ArrayExpression(a) => self.eval_array(a, d),
            Expression::ObjectExpression(o) => self.eval_object(o, d),
            Expression::UnaryExpression(u) => self.eval_unary(u, d),
            Expression::LogicalExpression(l) => self.eval_logical(l, d),
            Expression::BinaryExpression(b) => self.eval_binary(b, d),
            Expression::ConditionalExpression(c) => {
                let test = self.eval(&c.test, d);
                match test.truthy() {
                    Some(true) => self.eval(&c.consequent, d),
                    Some(false) => self.eval(&c.alternate, d),
                    None => test,
                }
            }
            Expression::StaticMemberExpression(m) => self.eval_member(
                &m.object,
                MemberKey::Known(m.property.name.to_string()),
                m.optional,
                span,
                d,
            ),
            Expression::ComputedMemberExpression(m) => {
                let key = self.computed_key(&m.expression, d);
                self.eval_member(&m.object, key, m.optional, span, d)
            }
            Expression::ChainExpression(c) => match &c.expression {
                ChainElement::StaticMemberExpression(m) => self.eval_member(
                    &m.object,
                    MemberKey::Known(m.property.name.to_string()),
                    m.optional,
                    span,
                    d,
                ),
                ChainElement::ComputedMemberExpression(m) => {
                    let key = self.computed_key(&m.expression, d);
                    self.eval_member(&m.object, key, m.optional, span, d)
                }
                ChainElement::CallExpression(call) => {
                    self.eval_call(&call.callee, &call.arguments, span, false, d)
                }
                _ => self.other(span, self.code(span)),
            },
            Expression::CallExpression(c) => {
                self.eval_call(&c.callee, &c.arguments, span, false, d)
            }
            Expression::NewExpression(n) => self.eval_call(&n.callee, &n.arguments, span, true, d),
            Expression::ArrowFunctionExpression(_) | Expression::FunctionExpression(_) => {
                Val::opaque(loc, "a function", Origin::Function)
            }
            Expression::ClassExpression(_) => self.other(span, "a class"),
            Expression::AwaitExpression(_) => {
                self.other(span, format!("an await expression ({})", self.code(span)))
            }
            _ => self.other(span, format!("the expression {}", self.code(span))),
        }
    }

    fn computed_key(&mut self, expr: &Expression<'a>, d: u32) -> MemberKey {
        if let Some(k) = static_member_key(expr.get_inner_expression()) {
            return MemberKey::Known(k);
        }
        let v = self.eval(expr, d);
        match v.kind {
            Kind::Str(s) => MemberKey::Known(s),
            Kind::Number(n) => MemberKey::Known(js_number_to_string(n)),
            _ => MemberKey::Unknown,
        }
    }

    fn eval_template(&mut self, t: &TemplateLiteral<'a>, d: u32) -> Val {
        let loc = self.loc(t.span);
        let mut out = String::new();
        for (i, quasi) in t.quasis.iter().enumerate() {
            let Some(cooked) = &quasi.value.cooked else {
                return self.other(t.span, "a template literal with an invalid escape sequence");
            };
            out.push_str(cooked);
            if let Some(e) = t.expressions.get(i) {
                let v = self.eval(e, d);
                match to_js_string(&v) {
                    Some(s) => out.push_str(&s),
                    None if matches!(v.kind, Kind::Opaque(_)) => return v,
                    None => {
                        return self.other(
                            t.span,
                            format!("the template literal {}", self.code(t.span)),
                        );
                    }
                }
            }
        }
        Val::new(loc, Kind::Str(out))
    }

    fn eval_ident(&mut self, name: &'a str, span: Span, d: u32) -> Val {
        let loc = self.loc(span);
        match self.module.bindings.get(name) {
            Some(Binding::Var { init }) => {
                if let Some(m) = self.module.mutations.get(name) {
                    return self.other(
                        span,
                        format!("`{name}`, which is modified at line {}", self.loc(*m)),
                    );
                }
                let Some(init) = init else {
                    return Val::new(loc, Kind::Undefined);
                };
                if self.resolving.contains(&name) {
                    return self.other(span, format!("`{name}`, which refers to itself"));
                }
                self.resolving.push(name);
                let v = self.eval(init, d);
                self.resolving.pop();
                v
            }
            Some(Binding::Function) => {
                Val::opaque(loc, format!("the function `{name}`"), Origin::Function)
            }
            Some(Binding::Class) => self.other(span, format!("the class `{name}`")),
            Some(Binding::Other) => self.other(
                span,
                format!("`{name}`, which is not a plain top-level constant"),
            ),
            None => {
                if let Some(import) = self.module.imports.get(name) {
                    return Val::opaque(
                        loc,
                        format!("`{name}`, imported from \"{}\"", import.source),
                        Origin::Import {
                            local: name.to_string(),
                            import: import.clone(),
                        },
                    );
                }
                match name {
                    "undefined" => Val::new(loc, Kind::Undefined),
                    "NaN" => Val::new(loc, Kind::Number(f64::NAN)),
                    "Infinity" => Val::new(loc, Kind::Number(f64::INFINITY)),
                    _ => self.other(
                        span,
                        format!(
                            "`{name}`, which is not defined at the top level of the config file"
                        ),
                    ),
                }
            }
        }
    }

    fn eval_array(&mut self, array: &ArrayExpression<'a>, d: u32) -> Val {
        let mut items = Vec::with_capacity(array.elements.len());
        for el in &array.elements {
            match el {
                ArrayExpressionElement::SpreadElement(spread) => {
                    let v = self.eval(&spread.argument, d);
                    match v.kind {
                        Kind::Array(inner) => items.extend(inner),
                        Kind::Str(text) => {
                            items.extend(
                                text.chars()
                                    .map(|c| Val::new(v.loc, Kind::Str(c.to_string()))),
                            );
                        }
                        Kind::Opaque(op) => {
                            items.push(self.other(spread.span, format!("a spread of {}", op.what)));
                        }
                        _ => items.push(self.other(
                            spread.span,
                            format!("the spread {}", self.code(spread.span)),
                        )),
                    }
                }
                ArrayExpressionElement::Elision(e) => {
                    items.push(Val::new(self.loc(e.span), Kind::Undefined));
                }
                other => match other.as_expression() {
                    Some(e) => items.push(self.eval(e, d)),
                    None => items.push(self.other(other.span(), self.code(other.span()))),
                },
            }
        }
        Val::new(self.loc(array.span), Kind::Array(items))
    }

    pub(crate) fn eval_object(&mut self, o: &ObjectExpression<'a>, d: u32) -> Val {
        let loc = self.loc(o.span);
        let mut props: Vec<(String, Val)> = Vec::with_capacity(o.properties.len());
        for prop in &o.properties {
            match prop {
                ObjectPropertyKind::ObjectProperty(p) => {
                    let key = if p.computed {
                        let key = p.key.as_expression().map(|e| self.computed_key(e, d));
                        match key {
                            Some(MemberKey::Known(k)) => k,
                            _ => {
                                return self.other(
                                    o.span,
                                    format!(
                                        "an object with the computed key [{}]",
                                        self.module.snippet(p.key.span())
                                    ),
                                );
                            }
                        }
                    } else {
                        match p.key.static_name() {
                            Some(k) => k.into_owned(),
                            None => continue,
                        }
                    };
                    let value = match p.kind {
                        PropertyKind::Init => self.eval(&p.value, d),
                        PropertyKind::Get => {
                            Val::opaque(self.loc(p.span), "a getter", Origin::Function)
                        }
                        PropertyKind::Set => {
                            Val::opaque(self.loc(p.span), "a setter", Origin::Function)
                        }
                    };
                    insert(&mut props, key, value);
                }
                ObjectPropertyKind::SpreadProperty(s) => {
                    let v = self.eval(&s.argument, d);
                    match v.kind {
                        Kind::Object(inner) => {
                            for (k, v) in inner {
                                insert(&mut props, k, v);
                            }
                        }
                        Kind::Undefined | Kind::Null | Kind::Bool(_) | Kind::Number(_) => {}
                        Kind::Opaque(op) => {
                            return self.other(
                                o.span,
                                format!(
                                    "an object that spreads {} ({})",
                                    self.code(s.argument.span()),
                                    op.what
                                ),
                            );
                        }
                        Kind::Array(_) | Kind::Str(_) => {
                            return self.other(
                                o.span,
                                format!("an object that spreads {}", self.code(s.argument.span())),
                            );
                        }
                    }
                }
            }
        }
        Val::new(loc, Kind::Object(props))
    }

    fn eval_unary(&mut self, u: &UnaryExpression<'a>, d: u32) -> Val {
        let loc = self.loc(u.span);
        if u.operator == UnaryOperator::Void {
            return Val::new(loc, Kind::Undefined);
        }
        let v = self.eval(&u.argument, d);
        if let Kind::Opaque(_) = v.kind {
            return v;
        }
        match (u.operator, &v.kind) {
            (UnaryOperator::UnaryNegation, Kind::Number(n)) => Val::new(loc, Kind::Number(-n)),
            (UnaryOperator::UnaryPlus, Kind::Number(n)) => Val::new(loc, Kind::Number(*n)),
            (UnaryOperator::LogicalNot, _) => match v.truthy() {
                Some(t) => Val::new(loc, Kind::Bool(!t)),
                None => v,
            },
            _ => self.other(u.span, format!("the expression {}", self.code(u.span))),
        }
    }

    fn eval_logical(&mut self, l: &LogicalExpression<'a>, d: u32) -> Val {
        let left = self.eval(&l.left, d);
        if let Kind::Opaque(_) = left.kind {
            return left;
        }
        let take_right = match l.operator {
            LogicalOperator::Coalesce => matches!(left.kind, Kind::Undefined | Kind::Null),
            LogicalOperator::Or => left.truthy() == Some(false),
            LogicalOperator::And => left.truthy() == Some(true),
        };
        if take_right {
            self.eval(&l.right, d)
        } else {
            left
        }
    }

    fn eval_binary(&mut self, b: &BinaryExpression<'a>, d: u32) -> Val {
        let loc = self.loc(b.span);
        let left = self.eval(&b.left, d);
        if let Kind::Opaque(_) = left.kind {
            return left;
        }
        let right = self.eval(&b.right, d);
        if let Kind::Opaque(_) = right.kind {
            return right;
        }
        let num = |n: f64| Val::new(loc, Kind::Number(n));
        match (b.operator, &left.kind, &right.kind) {
            (BinaryOperator::Addition, Kind::Number(x), Kind::Number(y)) => num(x + y),
            (BinaryOperator::Addition, Kind::Str(_), _)
            | (BinaryOperator::Addition, _, Kind::Str(_)) => {
                match (to_js_string(&left), to_js_string(&right)) {
                    (Some(x), Some(y)) => Val::new(loc, Kind::Str(x + &y)),
                    _ => self.other(b.span, format!("the expression {}", self.code(b.span))),
                }
            }
            (BinaryOperator::Subtraction, Kind::Number(x), Kind::Number(y)) => num(x - y),
            (BinaryOperator::Multiplication, Kind::Number(x), Kind::Number(y)) => num(x * y),
            (BinaryOperator::Division, Kind::Number(x), Kind::Number(y)) => num(x / y),
            (BinaryOperator::Remainder, Kind::Number(x), Kind::Number(y)) => num(x % y),
            (BinaryOperator::Exponential, Kind::Number(x), Kind::Number(y)) => num(x.powf(*y)),
            (BinaryOperator::StrictEquality | BinaryOperator::StrictInequality, _, _) => {
                match strict_equals(&left.kind, &right.kind) {
                    Some(eq) => Val::new(
                        loc,
                        Kind::Bool(eq == (b.operator == BinaryOperator::StrictEquality)),
                    ),
                    None => self.other(b.span, format!("the comparison {}", self.code(b.span))),
                }
            }
            (BinaryOperator::Equality | BinaryOperator::Inequality, _, _) => {
                let nullish = |k: &Kind| matches!(k, Kind::Undefined | Kind::Null);
                let eq = if nullish(&left.kind) || nullish(&right.kind) {
                    Some(nullish(&left.kind) && nullish(&right.kind))
                } else if std::mem::discriminant(&left.kind) == std::mem::discriminant(&right.kind)
                {
                    strict_equals(&left.kind, &right.kind)
                } else {
                    None
                };
                match eq {
                    Some(eq) => Val::new(
                        loc,
                        Kind::Bool(eq == (b.operator == BinaryOperator::Equality)),
                    ),
                    None => self.other(b.span, format!("the comparison {}", self.code(b.span))),
                }
            }
            _ => self.other(b.span, format!("the expression {}", self.code(b.span))),
        }
    }

    fn eval_member(
        &mut self,
        object: &Expression<'a>,
        key: MemberKey,
        optional: bool,
        span: Span,
        d: u32,
    ) -> Val {
        let loc = self.loc(span);
        if is_process_env(object) && !self.module.bindings.contains_key("process") {
            return match key {
                MemberKey::Known(name) => self.env_read(name, span),
                MemberKey::Unknown => self.other(
                    span,
                    format!(
                        "{}, a process.env read with a computed name",
                        self.code(span)
                    ),
                ),
            };
        }
        let obj = self.eval(object, d);
        let MemberKey::Known(key) = key else {
            return self.other(span, format!("the member access {}", self.code(span)));
        };
        match &obj.kind {
            Kind::Object(_) => obj
                .get(&key)
                .cloned()
                .unwrap_or(Val::new(loc, Kind::Undefined)),
            Kind::Array(items) => {
                if key == "length" {
                    #[allow(clippy::cast_precision_loss)]
                    return Val::new(loc, Kind::Number(items.len() as f64));
                }
                match key.parse::<usize>() {
                    Ok(i) => items
                        .get(i)
                        .cloned()
                        .unwrap_or(Val::new(loc, Kind::Undefined)),
                    Err(_) => self.other(span, format!("the member access {}", self.code(span))),
                }
            }
            Kind::Str(s) if key == "length" => {
                #[allow(clippy::cast_precision_loss)]
                let len = s.encode_utf16().count() as f64;
                Val::new(loc, Kind::Number(len))
            }
            Kind::Undefined | Kind::Null if optional => Val::new(loc, Kind::Undefined),
            Kind::Opaque(_) => self.other(
                span,
                format!(
                    "{} (a property of something liftoff can't evaluate)",
                    self.code(span)
                ),
            ),
            _ => self.other(span, format!("the member access {}", self.code(span))),
        }
    }

    fn env_read(&mut self, name: String, span: Span) -> Val {
        let loc = self.loc(span);
        if let Some(m) = self.module.env_mutations.get(&name) {
            return self.other(
                span,
                format!(
                    "process.env.{name}, which the config file assigns at line {}",
                    self.loc(*m)
                ),
            );
        }
        let value = self.env.get(&name).cloned();
        self.env_reads.push(EnvRead {
            name,
            location: loc,
            present: value.is_some(),
        });
        match value {
            Some(v) => Val::new(loc, Kind::Str(v)),
            None => Val::new(loc, Kind::Undefined),
        }
    }

    fn eval_call(
        &mut self,
        callee: &Expression<'a>,
        args: &[Argument<'a>],
        span: Span,
        is_new: bool,
        d: u32,
    ) -> Val {
        let (name, import) = self.callee_info(callee);
        let args = args
            .iter()
            .map(|a| match a.as_expression() {
                Some(e) => self.eval(e, d),
                None => self.other(
                    a.span(),
                    format!("the spread argument {}", self.code(a.span())),
                ),
            })
            .collect();
        let callee_text = self.module.snippet(callee.span());
        let what = if is_new {
            format!("`new {callee_text}(...)`")
        } else {
            format!("a call to `{callee_text}(...)`")
        };
        Val::opaque(
            self.loc(span),
            what,
            Origin::Call {
                callee: name,
                import,
                args,
                is_new,
            },
        )
    }

    /// Local name (`fn`, `ns.fn`) and import of a callee.
    fn callee_info(&self, callee: &Expression<'a>) -> (Option<String>, Option<ImportRef>) {
        let callee = callee.get_inner_expression();
        match callee {
            Expression::Identifier(id) => {
                let name = id.name.as_str();
                let import = if self.module.bindings.contains_key(name) {
                    None
                } else {
                    self.module.imports.get(name).cloned()
                };
                (Some(name.to_string()), import)
            }
            Expression::StaticMemberExpression(m) => {
                let dotted = dotted_name(callee);
                let import = root_identifier(callee)
                    .filter(|root| !self.module.bindings.contains_key(root))
                    .and_then(|root| self.module.imports.get(root))
                    .map(|imp| {
                        if imp.imported == "*"
                            && matches!(m.object.get_inner_expression(), Expression::Identifier(_))
                        {
                            ImportRef {
                                source: imp.source.clone(),
                                imported: m.property.name.to_string(),
                            }
                        } else {
                            imp.clone()
                        }
                    });
                (dotted, import)
            }
            _ => (None, None),
        }
    }
}

/// `a.b.c` for a chain of static member accesses on an identifier.
fn dotted_name(expr: &Expression<'_>) -> Option<String> {
    let mut parts = Vec::new();
    let mut cur = expr.get_inner_expression();
    for _ in 0..64 {
        match cur {
            Expression::StaticMemberExpression(m) => {
                parts.push(m.property.name.as_str());
                cur = m.object.get_inner_expression();
            }
            Expression::Identifier(id) => {
                parts.push(id.name.as_str());
                parts.reverse();
                return Some(parts.join("."));
            }
            _ => return None,
        }
    }
    None
}

fn insert(props: &mut Vec<(String, Val)>, key: String, value: Val) {
    if let Some(slot) = props.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else {
        props.push((key, value));
    }
}

/// `String(v)` for primitives.
fn to_js_string(v: &Val) -> Option<String> {
    Some(match &v.kind {
        Kind::Undefined => "undefined".into(),
        Kind::Null => "null".into(),
        Kind::Bool(b) => b.to_string(),
        Kind::Number(n) => js_number_to_string(*n),
        Kind::Str(s) => s.clone(),
        Kind::Array(_) | Kind::Object(_) | Kind::Opaque(_) => return None,
    })
}

/// `===` for primitives; `None` for objects/arrays (identity is unknowable here).
#[allow(clippy::float_cmp)]
fn strict_equals(a: &Kind, b: &Kind) -> Option<bool> {
    Some(match (a, b) {
        (Kind::Undefined, Kind::Undefined) | (Kind::Null, Kind::Null) => true,
        (Kind::Bool(x), Kind::Bool(y)) => x == y,
        (Kind::Number(x), Kind::Number(y)) => x == y,
        (Kind::Str(x), Kind::Str(y)) => x == y,
        (Kind::Array(_) | Kind::Object(_) | Kind::Opaque(_), _)
        | (_, Kind::Array(_) | Kind::Object(_) | Kind::Opaque(_)) => {
            return None;
        }
        _ => false,
    })
}
