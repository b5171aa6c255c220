//! Built-in extensions, recognised from the config's import and call site.

pub(crate) mod data;
mod files;
pub(crate) use files::relative_path;
mod envsync;
mod packages;
mod prisma;
mod python;
mod vercel;

use liftoff_config::{ExtensionCall, ExtensionKind, StaticValue};
use liftoff_manifest::BuildManifest;

use crate::{Context, Extension, ExtensionError, Target};
use data::{DataFile, Options};

/// How one entry of `build.extensions` will run.
#[derive(Debug)]
pub(crate) enum Recognised {
    Native(Box<dyn Extension>),
    /// Not a built-in liftoff implements, or its options are not statically known.
    Sidecar {
        name: String,
        reason: String,
    },
}

/// Looks the call up among the built-ins.
pub(crate) fn recognise(
    call: &ExtensionCall,
    catalogue: &[DataFile],
    config_file: &str,
) -> Result<Recognised, ExtensionError> {
    let location = format!(" (at {config_file}:{})", call.span);
    let display = call.callee.clone().unwrap_or_else(|| match call.kind {
        ExtensionKind::InlineObject => {
            inline_name(call).unwrap_or_else(|| "inline extension".into())
        }
        _ => "extension".into(),
    });
    let (ExtensionKind::Call, Some(import)) = (&call.kind, &call.import) else {
        return Ok(Recognised::Sidecar {
            name: display,
            reason: "custom extension".into(),
        });
    };
    let Some(data) = catalogue.iter().find(|d| {
        d.extension.export == import.imported
            && (d.extension.module == import.source
                || d.extension.also_from.contains(&import.source))
    }) else {
        let what = if call.args.iter().any(StaticValue::contains_unevaluable) {
            "runs code from the config"
        } else {
            "is not built in"
        };
        return Ok(Recognised::Sidecar {
            name: display,
            reason: format!("`{}` from {} {what}", import.imported, import.source),
        });
    };
    if call.args.iter().any(StaticValue::contains_unevaluable) {
        return Ok(Recognised::Sidecar {
            name: data.extension.name.clone(),
            reason: "its options are only known at runtime".into(),
        });
    }
    let options = data::validate(data, call.args.first(), &location)?;
    Ok(Recognised::Native(Box::new(Builtin {
        data: data.clone(),
        options,
    })))
}

fn inline_name(call: &ExtensionCall) -> Option<String> {
    call.args.first()?.get("name")?.as_str().map(String::from)
}

/// A built-in running natively.
#[derive(Debug)]
pub(crate) struct Builtin {
    pub data: DataFile,
    pub options: Options,
}

impl Builtin {
    fn declarative_layer(&self, ctx: &mut Context<'_>) {
        if let Some(t) = &self.data.layer {
            ctx.add_layer(data::instantiate(t, &self.options));
        }
    }

    fn strings(&self, option: &str) -> Vec<String> {
        self.options
            .get(option)
            .and_then(StaticValue::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(StaticValue::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Extension for Builtin {
    fn name(&self) -> &str {
        &self.data.extension.name
    }

    fn externals_for_target(&mut self, target: Target) -> Result<Vec<String>, ExtensionError> {
        Ok(if target == Target::Deploy {
            self.data.extension.externals.clone()
        } else {
            Vec::new()
        })
    }

    fn on_build_start(&mut self, ctx: &mut Context<'_>) -> Result<(), ExtensionError> {
        if ctx.target == Target::Dev {
            return Ok(());
        }
        match self.data.extension.handler.as_str() {
            "additionalPackages" => packages::on_build_start(self, ctx),
            "prisma" => prisma::on_build_start(self, ctx),
            "python" => python::on_build_start(self, ctx),
            "declarative" if self.data.extension.hook == "start" => {
                self.declarative_layer(ctx);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_build_complete(
        &mut self,
        ctx: &mut Context<'_>,
        manifest: &BuildManifest,
    ) -> Result<(), ExtensionError> {
        match self.data.extension.handler.as_str() {
            // additionalFiles runs for every target, as upstream.
            "additionalFiles" => {
                let files = self.strings("files");
                files::copy_matches(ctx, &self.data.extension.name, &files, manifest)
            }
            // pythonExtension copies its scripts for every target too.
            "python" => python::on_build_complete(self, ctx, manifest),
            _ if ctx.target == Target::Dev => Ok(()),
            "declarative" if self.data.extension.hook == "complete" => {
                self.declarative_layer(ctx);
                Ok(())
            }
            "prisma" => prisma::on_build_complete(self, ctx, manifest),
            "vercel" => vercel::on_build_complete(self, ctx, manifest),
            "declarative" | "additionalPackages" | "emitDecoratorMetadata" => Ok(()),
            other => Err(ExtensionError::DataFile {
                file: format!("{}.toml", self.data.extension.export),
                message: format!("unknown handler `{other}`"),
            }),
        }
    }
}

/// A built-in with the given options, as recognition would produce it (tests).
#[cfg(test)]
pub(crate) fn test_builtin(export: &str, options: &serde_json::Value) -> Builtin {
    let data = data::all()
        .unwrap()
        .into_iter()
        .find(|d| d.extension.export == export)
        .unwrap();
    let options = options
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), crate::static_value(v)))
        .collect();
    Builtin { data, options }
}
