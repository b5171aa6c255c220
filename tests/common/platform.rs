//! Seeds for `liftoff-platform`, the local deploy API the deploy tests run against.

use liftoff_platform::{Seed, SeedProject};

/// The environment secret keys every seeded project gets.
pub const PROD_KEY: &str = "tr_prod_liftofftestkey0001";
pub const STAGING_KEY: &str = "tr_stg_liftofftestkey00002";

/// A generated personal access token and user, with `project` (prod and staging keys) holding
/// `env_vars` as `(environment, name, value)`.
pub fn seed(project: &str, env_vars: &[(&str, &str, &str)]) -> Seed {
    let mut seed = Seed::generate();
    seed.projects = vec![SeedProject {
        ref_: project.into(),
        name: project.into(),
        env_api_keys: vec![
            ("prod".into(), PROD_KEY.into()),
            ("staging".into(), STAGING_KEY.into()),
        ],
        env_vars: env_vars
            .iter()
            .map(|(e, k, v)| ((*e).to_string(), (*k).to_string(), (*v).to_string()))
            .collect(),
    }];
    seed
}
