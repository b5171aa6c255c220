use super::*;

fn src(origin: &str, text: &str) -> Source {
    Source {
        origin: origin.into(),
        text: text.into(),
    }
}

fn one(text: &str) -> Instruction {
    let steps = parse(&[src("ext", text)]).unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    steps.into_iter().next().unwrap().instruction
}

fn err(text: &str) -> InstructionError {
    parse(&[src("my-ext", text)]).unwrap_err()
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn upstream_python_instructions() {
    let sources = [
        src(
            "PythonExtension",
            "RUN apt-get update && apt-get install -y --no-install-recommends               python3 python3-pip python3-venv &&               apt-get clean && rm -rf /var/lib/apt/lists/*",
        ),
        src("PythonExtension", "RUN python3 -m venv /opt/venv"),
        src("PythonExtension", "ENV PATH=\"/opt/venv/bin:$PATH\""),
        src("PythonExtension", "ARG REQUIREMENTS_CONTENT"),
        src("PythonExtension", "COPY requirements.txt ."),
    ];
    let steps = parse(&sources).unwrap();
    let kinds: Vec<_> = steps.iter().map(|s| s.instruction.keyword()).collect();
    assert_eq!(kinds, ["RUN", "RUN", "ENV", "ARG", "COPY"]);
    let Instruction::Env(pairs) = &steps[2].instruction else {
        panic!()
    };
    let path = expand(&pairs[0].1, &env(&[("PATH", "/usr/bin:/bin")])).unwrap();
    assert_eq!(path, "/opt/venv/bin:/usr/bin:/bin");
    assert_eq!(
        steps[4].instruction,
        Instruction::Copy(Transfer {
            sources: vec!["requirements.txt".into()],
            dest: ".".into(),
            ..Transfer::default()
        })
    );
}

#[test]
fn add_with_and_without_checksum() {
    let hex = "00b41ea4d6e7a5b4affcfe4ac99951ec89da81a8cba40af19e9b98c3a8f9b4b8";
    let Instruction::Add(t) = one(&format!(
        "ADD --checksum=sha256:{hex} https://example.test/a.deb ."
    )) else {
        panic!()
    };
    assert_eq!(
        t.checksum.as_deref(),
        Some(format!("sha256:{hex}").as_str())
    );
    assert_eq!(t.sources, ["https://example.test/a.deb"]);
    // Upstream's audioWaveform without a checksum leaves two spaces.
    let Instruction::Add(t) = one("ADD  https://example.test/a.deb .") else {
        panic!()
    };
    assert_eq!(t.checksum, None);
    assert!(
        err("ADD --checksum=md5:abc https://x/y .")
            .message
            .contains("sha256")
    );
    assert!(
        err("ADD --checksum=sha256:abc https://x/y .")
            .message
            .contains("64 hex")
    );
}

#[test]
fn run_forms_and_continuations() {
    assert_eq!(
        one(r#"RUN ["python3", "-c", "print(1)"]"#),
        Instruction::Run(Command::Exec(vec![
            "python3".into(),
            "-c".into(),
            "print(1)".into()
        ]))
    );
    // Not valid JSON: shell form, as Docker does.
    assert_eq!(
        one("RUN [ -f /x ] && echo y"),
        Instruction::Run(Command::Shell("[ -f /x ] && echo y".into()))
    );
    let steps = parse(&[src("e", "RUN a \\\n  # comment\n  && b\n\nENV X=1")]).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[0].instruction,
        Instruction::Run(Command::Shell("a   && b".into()))
    );
    assert_eq!(
        one("run echo lower"),
        Instruction::Run(Command::Shell("echo lower".into()))
    );
}

#[test]
fn env_forms() {
    assert_eq!(
        one("ENV A=1 B=\"two words\" C=x\\ y"),
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "x\\ y".into()),
        ])
    );
    assert_eq!(
        one("ENV GREETING hello big world"),
        Instruction::Env(vec![("GREETING".into(), "hello big world".into())])
    );
    assert!(
        err("ENV 1A=x")
            .message
            .contains("not a valid variable name")
    );
    assert!(err("ENV A=1 B").message.contains("NAME=value"));
}

#[test]
fn expansion_rules() {
    let vars = env(&[("A", "x"), ("E", "")]);
    let ex = |w: &str| expand(w, &vars).unwrap();
    assert_eq!(ex("$A/${A}"), "x/x");
    assert_eq!(ex("'$A'"), "$A");
    assert_eq!(ex("\"$A b\""), "x b");
    assert_eq!(ex("\\$A"), "$A");
    assert_eq!(ex("${U:-def}|${E:-def}|${E-def}"), "def|def|");
    assert_eq!(ex("${A:+alt}|${U:+alt}"), "alt|");
    assert_eq!(ex("${U:-${A}}"), "x");
    assert_eq!(ex("$U"), "");
    assert_eq!(ex("cost $5"), "cost $5");
    assert!(
        expand("${U:?needs U}", &vars)
            .unwrap_err()
            .contains("needs U")
    );
    assert!(expand("${A", &vars).is_err());
    assert!(expand("\"open", &vars).is_err());
    assert_eq!(
        words("a \"b c\"  'd e' f\\ g"),
        ["a", "\"b c\"", "'d e'", "f\\ g"]
    );
}

#[test]
fn unsupported_instructions_name_the_extension_and_line() {
    let e = err("FROM alpine");
    assert_eq!(e.origin, "my-ext");
    assert_eq!(e.line, "FROM alpine");
    let text = e.to_string();
    assert!(
        text.starts_with("my-ext: image instruction `FROM alpine`"),
        "{text}"
    );
    for line in [
        "HEALTHCHECK CMD true",
        "ONBUILD RUN x",
        "RUN <<EOF\necho\nEOF",
        "COPY <<EOF /x\nhi\nEOF",
        "RUN --mount=type=cache,target=/root/.cache pip install x",
        "FROBNICATE x",
        "COPY --from=build /app /app2 ",
        "COPY https://example.test/x /x",
        "ADD git@example.test:a/b.git /src",
        "COPY onlyone",
        "WORKDIR",
    ] {
        let r = parse(&[src("my-ext", line)]);
        if line.starts_with("COPY --from=build") {
            // Parses; resolving `build` as an image fails later, at execution.
            assert!(r.is_ok(), "{line}");
        } else {
            assert!(r.is_err(), "{line} should fail");
        }
    }
    // A here-string is not a heredoc.
    assert!(parse(&[src("e", "RUN cat <<< hi")]).is_ok());
}

#[test]
fn copy_flags() {
    let Instruction::Copy(t) = one("COPY --chown=node:node --chmod=755 --link a b /dest/") else {
        panic!()
    };
    assert_eq!(t.chown.as_deref(), Some("node:node"));
    assert_eq!(t.chmod.as_deref(), Some("755"));
    assert_eq!(t.sources, ["a", "b"]);
    assert_eq!(t.dest, "/dest/");
    let Instruction::Copy(t) = one(r#"COPY ["a b", "/x y/"]"#) else {
        panic!()
    };
    assert_eq!(t.sources, ["a b"]);
    assert!(
        err("COPY --checksum=sha256:00 a b")
            .message
            .contains("not supported")
    );
    assert!(err("ADD --from=img a b").message.contains("not supported"));
}
