//! additionalPackages: extra dependencies at the installed version unless pinned.

use indexmap::IndexMap;

use super::Builtin;
use crate::layer::BuildLayer;
use crate::{Context, ExtensionError};

/// Splits `name@version` like upstream's pattern
/// `^(@?[a-z0-9-~][a-z0-9-._~]*\/)?([a-z0-9-~][a-z0-9-._~]*)(@(.+))?$` (case-insensitive).
pub(crate) fn parse_spec(spec: &str) -> Option<(String, Option<String>)> {
    let valid_first = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '~';
    let valid_rest = |c: char| valid_first(c) || c == '.' || c == '_';
    let valid = |s: &str| s.chars().next().is_some_and(valid_first) && s.chars().all(valid_rest);
    let (scope, rest) = match spec.split_once('/') {
        Some((scope, rest)) => {
            let bare = scope.strip_prefix('@').unwrap_or(scope);
            if !valid(bare) {
                return None;
            }
            (Some(scope), rest)
        }
        None => (None, spec),
    };
    let (name, version) = match rest.split_once('@') {
        Some((n, v)) if !v.is_empty() => (n, Some(v.to_string())),
        Some(_) => return None,
        None => (rest, None),
    };
    if !valid(name) {
        return None;
    }
    Some((
        scope.map_or_else(|| name.to_string(), |s| format!("{s}/{name}")),
        version,
    ))
}

fn installed_version(ctx: &Context<'_>, name: &str) -> Option<String> {
    liftoff_config::package_version(&liftoff_config::find_node_module(ctx.working_dir, name)?)
}

pub(super) fn on_build_start(b: &Builtin, ctx: &mut Context<'_>) -> Result<(), ExtensionError> {
    let mut dependencies = IndexMap::new();
    for spec in b.strings("packages") {
        let (name, version) = parse_spec(&spec).ok_or_else(|| {
            ExtensionError::failed(&b.data.extension.name, "onBuildStart", format!("invalid package name `{spec}`: expected `name`, `@scope/name` or `name@version`"))
        })?;
        let version = version
            .or_else(|| installed_version(ctx, &name))
            .unwrap_or_else(|| "latest".into());
        dependencies.insert(name, version);
    }
    ctx.add_layer(BuildLayer {
        id: "additionalPackages".into(),
        dependencies: Some(dependencies),
        ..BuildLayer::default()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_spec;

    #[test]
    fn specs() {
        assert_eq!(parse_spec("ms"), Some(("ms".into(), None)));
        assert_eq!(
            parse_spec("left-pad@1.3.0"),
            Some(("left-pad".into(), Some("1.3.0".into())))
        );
        assert_eq!(
            parse_spec("@scope/pkg@^2"),
            Some(("@scope/pkg".into(), Some("^2".into())))
        );
        assert_eq!(parse_spec("@scope/pkg"), Some(("@scope/pkg".into(), None)));
        assert_eq!(parse_spec("bad name"), None);
        assert_eq!(parse_spec("x@"), None);
        assert_eq!(parse_spec("$(rm -rf)"), None);
    }
}
