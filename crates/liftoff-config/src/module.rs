//! Parsing a config file with oxc and indexing its top level: imports,
//! top-level bindings, mutations, and where the config object is.

use std::collections::HashMap;
use std::path::Path;

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    Argument, AssignmentTarget, AssignmentTargetPropertyIdentifier, BindingPattern, CallExpression,
    Declaration, ExportDefaultDeclarationKind, Expression, ImportDeclaration,
    ImportDeclarationSpecifier, ImportOrExportKind, ModuleExportName, ObjectExpression, Program,
    PropertyKey, SimpleAssignmentTarget, Statement, UnaryExpression, VariableDeclaration,
};
use oxc::ast_visit::{Visit, walk};
use oxc::parser::Parser;
use oxc::span::{GetSpan, SourceType, Span};
use oxc::syntax::operator::UnaryOperator;

use crate::location::LineIndex;
use crate::{ConfigError, ImportRef};

/// Parses `source`; syntax errors become [`ConfigError::Syntax`].
///
/// Files oxc would treat as scripts/CommonJS (`.cjs`, `.cts`, ambiguous
/// `.js`/`.ts`) are re-parsed as ES modules when that is what makes them
/// parse, since jiti (which upstream loads configs with) accepts both.
pub(crate) fn parse<'a>(
    allocator: &'a Allocator,
    path: &Path,
    source: &'a str,
) -> Result<Program<'a>, ConfigError> {
    let source_type =
        SourceType::from_path(path).map_err(|_| ConfigError::UnsupportedExtension {
            path: path.to_path_buf(),
        })?;
    let ret = Parser::new(allocator, source, source_type).parse();
    if !ret.diagnostics.has_errors() && !ret.panicked {
        return Ok(ret.program);
    }
    if !source_type.is_module() {
        let retry = Parser::new(allocator, source, source_type.with_module(true)).parse();
        if !retry.diagnostics.has_errors() && !retry.panicked {
            return Ok(retry.program);
        }
    }
    let lines = LineIndex::new(source);
    let (location, message) = match ret.diagnostics.errors().next() {
        Some(d) => {
            let location = d.labels.first().map(|l| lines.location(l.offset()));
            let mut message = d.message.to_string();
            if let Some(help) = &d.help {
                message.push_str(" (");
                message.push_str(help);
                message.push(')');
            }
            (location, message)
        }
        None => (
            None,
            "the parser could not make sense of the file".to_string(),
        ),
    };
    Err(ConfigError::Syntax {
        path: path.to_path_buf(),
        location,
        message,
    })
}

/// What a top-level name is bound to.
pub(crate) enum Binding<'b, 'a> {
    /// `const|let|var name = init`.
    Var {
        init: Option<&'b Expression<'a>>,
    },
    Function,
    Class,
    /// Destructured, enum, namespace, ambient, …
    Other,
}

/// Where the config object export starts.
#[derive(Clone, Copy)]
pub(crate) enum ConfigStart<'b, 'a> {
    Expr(&'b Expression<'a>),
    Name(&'a str, Span),
}

/// The top level of a parsed config file.
pub(crate) struct Module<'b, 'a> {
    pub program: &'b Program<'a>,
    pub source: &'a str,
    pub bindings: HashMap<&'a str, Binding<'b, 'a>>,
    pub imports: HashMap<&'a str, ImportRef>,
    /// Every module specifier imported or required at the top level.
    pub import_sources: Vec<String>,
    /// Root identifier name → first place it is assigned/mutated anywhere in the file.
    pub mutations: HashMap<String, Span>,
    /// `process.env.KEY` assigned anywhere in the file → first place.
    pub env_mutations: HashMap<String, Span>,
    /// Names declared more than once at the top level.
    redeclared: HashMap<&'a str, Span>,
}

const MUTATING_METHODS: &[&str] = &[
    "push",
    "pop",
    "shift",
    "unshift",
    "splice",
    "sort",
    "reverse",
    "fill",
    "copyWithin",
    "set",
    "delete",
    "add",
    "clear",
];

impl<'b, 'a> Module<'b, 'a> {
    pub(crate) fn new(program: &'b Program<'a>, source: &'a str) -> Self {
        let mut m = Module {
            program,
            source,
            bindings: HashMap::new(),
            imports: HashMap::new(),
            import_sources: Vec::new(),
            mutations: HashMap::new(),
            env_mutations: HashMap::new(),
            redeclared: HashMap::new(),
        };
        for stmt in &program.body {
            match stmt {
                Statement::ImportDeclaration(d) => m.add_import(d),
                Statement::VariableDeclaration(d) => m.add_vars(d),
                Statement::FunctionDeclaration(f) => {
                    if let Some(id) = &f.id {
                        m.bind(id.name.as_str(), id.span, Binding::Function);
                    }
                }
                Statement::ClassDeclaration(c) => {
                    if let Some(id) = &c.id {
                        m.bind(id.name.as_str(), id.span, Binding::Class);
                    }
                }
                Statement::ExportDeclaration(e) => match &e.declaration {
                    Declaration::VariableDeclaration(d) => m.add_vars(d),
                    Declaration::FunctionDeclaration(f) => {
                        if let Some(id) = &f.id {
                            m.bind(id.name.as_str(), id.span, Binding::Function);
                        }
                    }
                    Declaration::ClassDeclaration(c) => {
                        if let Some(id) = &c.id {
                            m.bind(id.name.as_str(), id.span, Binding::Class);
                        }
                    }
                    Declaration::TSEnumDeclaration(d) => {
                        m.bind(d.id.name.as_str(), d.id.span, Binding::Other);
                    }
                    _ => {}
                },
                Statement::TSEnumDeclaration(d) => {
                    m.bind(d.id.name.as_str(), d.id.span, Binding::Other);
                }
                Statement::ExportDefaultDeclaration(d) => match &d.declaration {
                    ExportDefaultDeclarationKind::FunctionDeclaration(f) => {
                        if let Some(id) = &f.id {
                            m.bind(id.name.as_str(), id.span, Binding::Function);
                        }
                    }
                    ExportDefaultDeclarationKind::ClassDeclaration(c) => {
                        if let Some(id) = &c.id {
                            m.bind(id.name.as_str(), id.span, Binding::Class);
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let mut finder = MutationFinder {
            mutations: HashMap::new(),
            env_mutations: HashMap::new(),
        };
        finder.visit_program(program);
        m.mutations = finder.mutations;
        m.env_mutations = finder.env_mutations;
        for (name, span) in std::mem::take(&mut m.redeclared) {
            m.mutations.entry(name.to_string()).or_insert(span);
        }
        m
    }

    fn bind(&mut self, name: &'a str, span: Span, binding: Binding<'b, 'a>) {
        if self.bindings.insert(name, binding).is_some() {
            self.redeclared.entry(name).or_insert(span);
        }
    }

    fn add_import(&mut self, d: &'b ImportDeclaration<'a>) {
        self.import_sources.push(d.source.value.to_string());
        if d.import_kind == ImportOrExportKind::Type {
            return;
        }
        let source = d.source.value.to_string();
        for spec in d.specifiers.iter().flatten() {
            let (local, imported) = match spec {
                ImportDeclarationSpecifier::ImportSpecifier(s) => {
                    if s.import_kind == ImportOrExportKind::Type {
                        continue;
                    }
                    (s.local.name.as_str(), s.imported.name().to_string())
                }
                ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => {
                    (s.local.name.as_str(), "default".to_string())
                }
                ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => {
                    (s.local.name.as_str(), "*".to_string())
                }
            };
            self.imports.insert(
                local,
                ImportRef {
                    source: source.clone(),
                    imported,
                },
            );
        }
    }

    fn add_vars(&mut self, d: &'b VariableDeclaration<'a>) {
        for decl in &d.declarations {
            let required = decl.init.as_ref().and_then(require_source);
            if let Some(src) = &required {
                self.import_sources.push(src.clone());
            }
            match (&decl.id, required) {
                (BindingPattern::BindingIdentifier(id), Some(source)) if !d.declare => {
                    self.imports.insert(
                        id.name.as_str(),
                        ImportRef {
                            source,
                            imported: "*".into(),
                        },
                    );
                }
                (BindingPattern::ObjectPattern(pat), Some(source)) if !d.declare => {
                    for prop in &pat.properties {
                        let (Some(key), Some(local)) =
                            (prop.key.static_name(), prop.value.get_identifier_name())
                        else {
                            continue;
                        };
                        if prop.computed {
                            continue;
                        }
                        self.imports.insert(
                            local.as_str(),
                            ImportRef {
                                source: source.clone(),
                                imported: key.to_string(),
                            },
                        );
                    }
                    if let Some(rest) = &pat.rest {
                        for id in rest.argument.get_binding_identifiers() {
                            self.bind(id.name.as_str(), id.span, Binding::Other);
                        }
                    }
                }
                (BindingPattern::BindingIdentifier(id), None) if !d.declare => {
                    self.bind(
                        id.name.as_str(),
                        id.span,
                        Binding::Var {
                            init: decl.init.as_ref(),
                        },
                    );
                }
                (pattern, _) => {
                    for id in pattern.get_binding_identifiers() {
                        self.bind(id.name.as_str(), id.span, Binding::Other);
                    }
                }
            }
        }
    }

    /// A short, single-line excerpt of the source at `span`, for messages.
    pub(crate) fn snippet(&self, span: Span) -> String {
        let start = usize::try_from(span.start).unwrap_or(0);
        let end = usize::try_from(span.end).unwrap_or(0);
        let text = self.source.get(start..end).unwrap_or("");
        let first_line = text.lines().next().unwrap_or("").trim_end();
        let mut out: String = first_line.chars().take(60).collect();
        if out.len() < text.trim_end().len() {
            out.push('…');
        }
        out
    }

    /// The expression the config object export starts at: the default export,
    /// else the `config` export (upstream's order).
    pub(crate) fn config_export(&self) -> Result<Option<ConfigStart<'b, 'a>>, (Span, String)> {
        let mut default = None;
        let mut config = None;
        for stmt in &self.program.body {
            match stmt {
                Statement::ExportDefaultDeclaration(d) => match &d.declaration {
                    ExportDefaultDeclarationKind::FunctionDeclaration(f) => {
                        return Err((f.span, "the default export is a function".into()));
                    }
                    ExportDefaultDeclarationKind::ClassDeclaration(c) => {
                        return Err((c.span, "the default export is a class".into()));
                    }
                    kind => {
                        if let Some(e) = kind.as_expression() {
                            default = Some(ConfigStart::Expr(e));
                        }
                    }
                },
                Statement::ExportDeclaration(e) => {
                    if let Declaration::VariableDeclaration(d) = &e.declaration {
                        for decl in &d.declarations {
                            if decl.id.get_identifier_name().is_some_and(|n| n == "config")
                                && let Some(init) = &decl.init
                            {
                                config = Some(ConfigStart::Expr(init));
                            }
                        }
                    }
                }
                Statement::ExportNamedDeclaration(e)
                    if e.export_kind != ImportOrExportKind::Type =>
                {
                    for spec in &e.specifiers {
                        let local = match &spec.local {
                            ModuleExportName::IdentifierName(n) => n.name.as_str(),
                            ModuleExportName::IdentifierReference(n) => n.name.as_str(),
                            ModuleExportName::StringLiteral(_) => continue,
                        };
                        match spec.exported.name().as_str() {
                            "default" => default = Some(ConfigStart::Name(local, spec.span)),
                            "config" => config = Some(ConfigStart::Name(local, spec.span)),
                            _ => {}
                        }
                    }
                }
                Statement::ExpressionStatement(s) => {
                    // CommonJS: `module.exports = ...`
                    if let Expression::AssignmentExpression(a) = &s.expression
                        && let AssignmentTarget::StaticMemberExpression(m) = &a.left
                        && m.property.name == "exports"
                        && m.object.is_specific_id("module")
                    {
                        default = Some(ConfigStart::Expr(&a.right));
                    }
                }
                _ => {}
            }
        }
        Ok(default.or(config))
    }

    /// Follows the export through identifiers and one-argument wrapper calls
    /// (`defineConfig(...)`) to the config object literal.
    pub(crate) fn config_object(
        &self,
        start: ConfigStart<'b, 'a>,
        check_mutations: bool,
    ) -> Result<&'b ObjectExpression<'a>, (Span, String)> {
        let mut expr = match start {
            ConfigStart::Expr(e) => e,
            ConfigStart::Name(name, span) => self.binding_init(name, span, check_mutations)?,
        };
        for _ in 0..64 {
            let inner = expr.get_inner_expression();
            match inner {
                Expression::ObjectExpression(o) => return Ok(o),
                Expression::CallExpression(c) => expr = self.wrapper_argument(c)?,
                Expression::Identifier(id) => {
                    expr = self.binding_init(id.name.as_str(), id.span, check_mutations)?;
                }
                Expression::ArrowFunctionExpression(_) | Expression::FunctionExpression(_) => {
                    return Err((inner.span(), "the config is a function".into()));
                }
                other => {
                    return Err((
                        other.span(),
                        format!("`{}` is not an object literal", self.snippet(other.span())),
                    ));
                }
            }
        }
        Err((expr.span(), "the config refers to itself".into()))
    }

    fn wrapper_argument(
        &self,
        c: &'b CallExpression<'a>,
    ) -> Result<&'b Expression<'a>, (Span, String)> {
        let callee = self.snippet(c.callee.span());
        match c.arguments.as_slice() {
            [arg] => arg.as_expression().ok_or_else(|| {
                (
                    arg.span(),
                    format!("`{callee}(...)` is given a spread argument"),
                )
            }),
            [] => Err((
                c.span,
                format!("`{callee}()` is called without the config object"),
            )),
            _ => Err((
                c.span,
                format!(
                    "`{callee}(...)` is called with {} arguments (liftoff only looks through wrappers with one argument, like defineConfig({{ ... }}))",
                    c.arguments.len()
                ),
            )),
        }
    }

    fn binding_init(
        &self,
        name: &str,
        span: Span,
        check_mutations: bool,
    ) -> Result<&'b Expression<'a>, (Span, String)> {
        match self.bindings.get(name) {
            Some(Binding::Var { init: Some(init) }) => {
                if check_mutations && let Some(m) = self.mutations.get(name) {
                    return Err((*m, format!("`{name}` is modified after it is declared")));
                }
                Ok(init)
            }
            Some(Binding::Var { init: None }) => {
                Err((span, format!("`{name}` is declared without a value")))
            }
            Some(Binding::Function) => Err((span, format!("`{name}` is a function"))),
            Some(Binding::Class) => Err((span, format!("`{name}` is a class"))),
            Some(Binding::Other) => {
                Err((span, format!("`{name}` is not a plain top-level constant")))
            }
            None => match self.imports.get(name) {
                Some(imp) => Err((
                    span,
                    format!(
                        "`{name}` is imported from \"{}\" (liftoff needs the config object written in the config file itself)",
                        imp.source
                    ),
                )),
                None => Err((
                    span,
                    format!("`{name}` is not defined at the top level of the config file"),
                )),
            },
        }
    }

    /// `export const resolveEnvVars = ...` / `export function resolveEnvVars`.
    pub(crate) fn exports_resolve_env_vars(&self) -> bool {
        self.program.body.iter().any(|stmt| match stmt {
            Statement::ExportDeclaration(e) => match &e.declaration {
                Declaration::VariableDeclaration(d) => d.declarations.iter().any(|d| {
                    d.id.get_identifier_name()
                        .is_some_and(|n| n == "resolveEnvVars")
                }),
                Declaration::FunctionDeclaration(f) => {
                    f.id.as_ref().is_some_and(|id| id.name == "resolveEnvVars")
                }
                _ => false,
            },
            _ => false,
        })
    }
}

/// `require("x")` → `"x"`.
fn require_source(init: &Expression<'_>) -> Option<String> {
    let Expression::CallExpression(c) = init.get_inner_expression() else {
        return None;
    };
    if !c.callee.is_specific_id("require") {
        return None;
    }
    match c.arguments.as_slice() {
        [Argument::StringLiteral(s)] => Some(s.value.to_string()),
        _ => None,
    }
}

/// `a.b[c].d` → `a`.
pub(crate) fn root_identifier<'x>(expr: &'x Expression<'_>) -> Option<&'x str> {
    let mut expr = expr;
    for _ in 0..256 {
        expr = match expr.get_inner_expression() {
            Expression::Identifier(id) => return Some(id.name.as_str()),
            Expression::StaticMemberExpression(m) => &m.object,
            Expression::ComputedMemberExpression(m) => &m.object,
            Expression::PrivateFieldExpression(m) => &m.object,
            _ => return None,
        };
    }
    None
}

/// `process.env`, not shadowed by a top-level binding named `process`.
pub(crate) fn is_process_env(expr: &Expression<'_>) -> bool {
    match expr.get_inner_expression() {
        Expression::StaticMemberExpression(m) => {
            m.property.name == "env" && m.object.is_specific_id("process")
        }
        _ => false,
    }
}

/// The static key of `obj.key` / `obj["key"]` / ``obj[`key`]``.
pub(crate) fn static_member_key(expr: &Expression<'_>) -> Option<String> {
    match expr {
        Expression::StringLiteral(s) => Some(s.value.to_string()),
        Expression::TemplateLiteral(t) => t.single_quasi().map(|q| q.to_string()),
        _ => None,
    }
}

struct MutationFinder {
    mutations: HashMap<String, Span>,
    env_mutations: HashMap<String, Span>,
}

impl MutationFinder {
    fn record(&mut self, name: &str, span: Span) {
        self.mutations.entry(name.to_string()).or_insert(span);
    }

    fn record_target(&mut self, target: &SimpleAssignmentTarget<'_>, span: Span) {
        match target {
            SimpleAssignmentTarget::AssignmentTargetIdentifier(id) => {
                self.record(id.name.as_str(), span);
            }
            SimpleAssignmentTarget::StaticMemberExpression(m) => {
                if is_process_env(&m.object) {
                    self.env_mutations
                        .entry(m.property.name.to_string())
                        .or_insert(span);
                }
                if let Some(root) = root_identifier(&m.object) {
                    self.record(root, span);
                }
            }
            SimpleAssignmentTarget::ComputedMemberExpression(m) => {
                if is_process_env(&m.object)
                    && let Some(key) = static_member_key(&m.expression)
                {
                    self.env_mutations.entry(key).or_insert(span);
                }
                if let Some(root) = root_identifier(&m.object) {
                    self.record(root, span);
                }
            }
            SimpleAssignmentTarget::PrivateFieldExpression(m) => {
                if let Some(root) = root_identifier(&m.object) {
                    self.record(root, span);
                }
            }
            SimpleAssignmentTarget::TSAsExpression(e) => self.record_expr_root(&e.expression, span),
            SimpleAssignmentTarget::TSSatisfiesExpression(e) => {
                self.record_expr_root(&e.expression, span);
            }
            SimpleAssignmentTarget::TSNonNullExpression(e) => {
                self.record_expr_root(&e.expression, span);
            }
            SimpleAssignmentTarget::TSTypeAssertion(e) => {
                self.record_expr_root(&e.expression, span);
            }
        }
    }

    fn record_expr_root(&mut self, expr: &Expression<'_>, span: Span) {
        if let Some(root) = root_identifier(expr) {
            self.record(root, span);
        }
    }
}

impl<'a> Visit<'a> for MutationFinder {
    fn visit_simple_assignment_target(&mut self, it: &SimpleAssignmentTarget<'a>) {
        self.record_target(it, it.span());
        walk::walk_simple_assignment_target(self, it);
    }

    fn visit_assignment_target_property_identifier(
        &mut self,
        it: &AssignmentTargetPropertyIdentifier<'a>,
    ) {
        self.record(it.binding.name.as_str(), it.span);
        walk::walk_assignment_target_property_identifier(self, it);
    }

    fn visit_unary_expression(&mut self, it: &UnaryExpression<'a>) {
        if it.operator == UnaryOperator::Delete {
            self.record_expr_root(&it.argument, it.span);
        }
        walk::walk_unary_expression(self, it);
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        match it.callee.get_inner_expression() {
            Expression::StaticMemberExpression(m)
                if m.object.is_specific_id("Object")
                    && matches!(
                        m.property.name.as_str(),
                        "assign" | "defineProperty" | "defineProperties" | "setPrototypeOf"
                    ) =>
            {
                if let Some(first) = it.arguments.first().and_then(Argument::as_expression) {
                    self.record_expr_root(first, it.span);
                }
            }
            Expression::StaticMemberExpression(m)
                if MUTATING_METHODS.contains(&m.property.name.as_str()) =>
            {
                self.record_expr_root(&m.object, it.span);
            }
            _ => {}
        }
        walk::walk_call_expression(self, it);
    }
}

/// Does `key` name `name` (non-computed identifier or string key)?
pub(crate) fn key_is(key: &PropertyKey<'_>, computed: bool, name: &str) -> bool {
    !computed && key.static_name().is_some_and(|n| n == name)
}
