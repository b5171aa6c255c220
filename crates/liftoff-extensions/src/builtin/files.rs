//! Copying files into the build (additionalFiles, python scripts): upstream's
//! `addAdditionalFilesToBuild`.

use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;
use liftoff_manifest::BuildManifest;

use crate::{Context, ExtensionError};

/// Globs each matcher from the working dir and copies every file to the build dir
/// under its working-dir-relative path with `..` segments removed. A matcher with
/// no match is a warning; a symlink that resolves outside the project is refused.
pub(crate) fn copy_matches(
    ctx: &mut Context<'_>,
    extension: &str,
    matchers: &[String],
    manifest: &BuildManifest,
) -> Result<(), ExtensionError> {
    let build_dir = PathBuf::from(&manifest.output_path);
    let project_root =
        std::fs::canonicalize(ctx.working_dir).unwrap_or_else(|_| ctx.working_dir.to_path_buf());
    for matcher in matchers {
        let found = glob(ctx.working_dir, matcher)
            .map_err(|message| ExtensionError::failed(extension, "onBuildComplete", message))?;
        if found.is_empty() {
            ctx.warn(format!(
                "[{extension}] No files found for matcher {matcher}"
            ));
            continue;
        }
        for file in found {
            if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
                let target = std::fs::canonicalize(&file).map_err(|source| ExtensionError::Io {
                    extension: extension.to_string(),
                    action: "resolve the symlink",
                    path: file.clone(),
                    source,
                })?;
                if !target.starts_with(&project_root) {
                    return Err(ExtensionError::failed(
                        extension,
                        "onBuildComplete",
                        format!(
                            "{} is a symlink to {}, outside the project; liftoff does not copy files through symlinks that leave the project. Copy the file into the project or match it by its real path.",
                            file.display(),
                            target.display()
                        ),
                    ));
                }
            }
            let rel = relative(ctx.working_dir, &file);
            let dest = build_dir.join(&rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|source| ExtensionError::Io {
                    extension: extension.to_string(),
                    action: "create",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::copy(&file, &dest).map_err(|source| ExtensionError::Io {
                extension: extension.to_string(),
                action: "copy",
                path: file.clone(),
                source,
            })?;
            ctx.record_copy(&file, &dest, &build_dir);
        }
    }
    Ok(())
}

/// `relative(workingDir, file)` with every `..` segment removed.
fn relative(working_dir: &Path, file: &Path) -> PathBuf {
    let rel = relative_path(file, working_dir);
    rel.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// `path` relative to `base`, with `..` where needed (both absolute).
pub(crate) fn relative_path(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for c in &path[common..] {
        out.push(c.as_os_str());
    }
    out
}

fn has_glob(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '{'])
}

/// Files matching `pattern` (relative to `cwd`, may start with `../`), sorted.
fn glob(cwd: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let segments: Vec<&str> = pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let split = segments
        .iter()
        .position(|s| has_glob(s))
        .unwrap_or(segments.len());
    // An absolute pattern (e.g. python's `requirementsFile: "/abs/requirements.txt"`) starts at the root.
    let mut base = if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        cwd.to_path_buf()
    };
    for s in &segments[..split] {
        if *s == ".." {
            base.pop();
        } else {
            base.push(s);
        }
    }
    if split == segments.len() {
        // A plain path: the file itself, or every file below a directory (as tinyglobby).
        if !base.is_dir() {
            return Ok(if base.is_file() {
                vec![base]
            } else {
                Vec::new()
            });
        }
    }
    let rest = if split == segments.len() {
        "**".to_string()
    } else {
        segments[split..].join("/")
    };
    let matcher = GlobBuilder::new(&rest)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob {pattern:?}: {e}"))?
        .compile_matcher();
    let dot_ok = rest.split('/').any(|s| s.starts_with('.'));
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&base)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&base) else {
            continue;
        };
        if !dot_ok
            && rel
                .components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if matcher.is_match(rel) {
            out.push(entry.path().to_path_buf());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_segments_are_dropped() {
        assert_eq!(
            relative(Path::new("/p/app"), Path::new("/p/shared/x.json")),
            PathBuf::from("shared/x.json")
        );
        assert_eq!(
            relative(Path::new("/p/app"), Path::new("/p/app/assets/a.txt")),
            PathBuf::from("assets/a.txt")
        );
    }

    #[test]
    fn globs_inside_and_outside() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        for f in [
            "app/assets/a.txt",
            "app/assets/sub/b.txt",
            "app/assets/c.bin",
            "app/assets/.hidden.txt",
            "shared/x.json",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let names = |v: Vec<PathBuf>| {
            v.iter()
                .map(|p| relative(&app, p).to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(glob(&app, "./assets/**/*.txt").unwrap()),
            ["assets/a.txt", "assets/sub/b.txt"]
        );
        assert_eq!(
            names(glob(&app, "../shared/x.json").unwrap()),
            ["shared/x.json"]
        );
        assert_eq!(
            names(glob(&app, "../shared/*.json").unwrap()),
            ["shared/x.json"]
        );
        assert!(glob(&app, "./missing/*.bin").unwrap().is_empty());
        let abs = dir.path().join("shared/x.json");
        assert_eq!(
            glob(&app, &abs.display().to_string()).unwrap(),
            std::slice::from_ref(&abs)
        );
        assert_eq!(
            names(glob(&app, &format!("{}/*.json", abs.parent().unwrap().display())).unwrap()),
            ["shared/x.json"]
        );
    }

    #[test]
    fn symlinks_leaving_the_project_are_refused() {
        use std::collections::BTreeMap;

        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        let out = dir.path().join("out");
        std::fs::create_dir_all(app.join("assets")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
        std::fs::write(app.join("assets/inside.txt"), "inside").unwrap();
        std::os::unix::fs::symlink(
            app.join("assets/inside.txt"),
            app.join("assets/ok-link.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), app.join("assets/escape.txt"))
            .unwrap();
        let manifest = BuildManifest {
            output_path: out.to_string_lossy().into_owned(),
            ..BuildManifest::default()
        };
        let env = BTreeMap::new();

        let mut ctx = Context::new(crate::Target::Deploy, crate::Runtime::Node, &app, "p", &env);
        copy_matches(
            &mut ctx,
            "additionalFiles",
            &["./assets/ok-link.txt".into()],
            &manifest,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("assets/ok-link.txt")).unwrap(),
            "inside"
        );

        let mut ctx = Context::new(crate::Target::Deploy, crate::Runtime::Node, &app, "p", &env);
        let err = copy_matches(
            &mut ctx,
            "additionalFiles",
            &["./assets/*.txt".into()],
            &manifest,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("escape.txt") && err.contains("outside the project"),
            "{err}"
        );
        assert!(!out.join("assets/escape.txt").exists());
    }
}
