use liftoff_config::{ConfigError, parse_env_file};

#[test]
fn reads_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "# comment\nexport TRIGGER_PROJECT_REF=proj_123\nDATABASE_URL=\"postgres://u:p@h/db\" # db\nMULTI=\"a\\nb\"\nREF=first\nREF=second\n").unwrap();
    let pairs = parse_env_file(&path).unwrap();
    assert_eq!(
        pairs,
        vec![
            ("TRIGGER_PROJECT_REF".to_string(), "proj_123".to_string()),
            (
                "DATABASE_URL".to_string(),
                "postgres://u:p@h/db".to_string()
            ),
            ("MULTI".to_string(), "a\nb".to_string()),
            ("REF".to_string(), "second".to_string()),
        ]
    );
    let err = parse_env_file(&dir.path().join("missing.env")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("missing.env"));
}
