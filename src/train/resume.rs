//! Which settings a resumed run may change. A resumed run continues bit-exactly only with the
//! model, data and optimisation it was trained with, so only its schedule (when to stop, and
//! what it writes along the way) may differ from the settings stored in its checkpoint.

use super::config::TrainConfig;
use serde_json::Value;

/// The flags of the settings a resumed run may change, in the order the CLI lists them.
pub const RESUMABLE_FLAGS: [&str; 6] = [
    "--steps",
    "--sample-every",
    "--checkpoint-every",
    "--keep-checkpoints",
    "--swd-every",
    "--swd-num",
];

impl TrainConfig {
    /// `self` with the schedule of `other`: the settings [`RESUMABLE_FLAGS`] set.
    pub fn with_schedule_of(&self, other: &TrainConfig) -> TrainConfig {
        TrainConfig {
            steps: other.steps,
            sample_every: other.sample_every,
            checkpoint_every: other.checkpoint_every,
            keep_checkpoints: other.keep_checkpoints,
            swd_every: other.swd_every,
            swd_num: other.swd_num,
            ..self.clone()
        }
    }

    /// Whether a run trained with `self` may continue with `wanted`: an error naming the first
    /// setting outside the schedule that differs (as its path in config.json, such as
    /// `model.g_features` or `lr`).
    pub fn check_resume(&self, wanted: &TrainConfig) -> Result<(), String> {
        // Compared as the JSON the checkpoint stores, so that the name given is a path into
        // config.json and the comparison is the one a stored run's settings round-trip through.
        let json = |c: &TrainConfig| {
            serde_json::to_value(c).expect("a TrainConfig serializes: its map keys are strings")
        };
        let (run, wanted) = (json(self), json(&wanted.with_schedule_of(self)));
        match differing_field(&run, &wanted, "") {
            None => Ok(()),
            Some(field) => Err(format!(
                "the run being resumed was trained with a different `{field}`: a resumed run \
                 keeps its own settings (only {} may change)",
                flag_list()
            )),
        }
    }
}

/// `--a, --b and --c`.
fn flag_list() -> String {
    let (last, rest) = RESUMABLE_FLAGS.split_last().expect("not empty");
    format!("{} and {last}", rest.join(", "))
}

/// The dotted path of the first leaf where `a` and `b` differ, in `a`'s key order; arrays
/// (such as `betas`) count as leaves.
fn differing_field(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.iter().find_map(|(key, v)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match y.get(key) {
                Some(w) => differing_field(v, w, &here),
                None => Some(here),
            }
        }),
        _ if a != b => Some(path.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::Preset;
    use std::path::PathBuf;

    fn refused(change: impl Fn(&mut TrainConfig)) -> String {
        let run = Preset::Quick.config();
        let mut wanted = run.clone();
        change(&mut wanted);
        run.check_resume(&wanted).unwrap_err()
    }

    #[test]
    fn the_schedule_may_change() {
        let run = Preset::Quick.config();
        let wanted = TrainConfig {
            steps: run.steps * 10,
            sample_every: 7,
            checkpoint_every: 11,
            keep_checkpoints: 1,
            swd_every: 0,
            swd_num: 1000,
            ..run.clone()
        };
        assert_eq!(run.check_resume(&wanted), Ok(()));
        assert_eq!(run.check_resume(&run), Ok(()));
        assert_eq!(run.with_schedule_of(&wanted), wanted);
    }

    #[test]
    fn any_other_change_is_refused_naming_the_field() {
        let e = refused(|c| c.model.g_features = 8);
        assert!(e.contains("`model.g_features`"), "{e}");
        assert!(
            e.contains(
                "only --steps, --sample-every, --checkpoint-every, --keep-checkpoints, \
                 --swd-every and --swd-num may change"
            ),
            "{e}"
        );
        assert!(refused(|c| c.model.image_size = 32).contains("`model.image_size`"));
        assert!(refused(|c| c.lr = 0.01).contains("`lr`"));
        assert!(refused(|c| c.betas.1 = 0.9).contains("`betas`"));
        assert!(refused(|c| c.batch = 32).contains("`batch`"));
        assert!(refused(|c| c.seed = 1).contains("`seed`"));
        assert!(refused(|c| c.data = Some(PathBuf::from("faces"))).contains("`data`"));
        // One field is named when several differ: the first in key order.
        let e = refused(|c| {
            c.lr = 0.01;
            c.seed = 1;
        });
        assert!(e.contains("`lr`") && !e.contains("`seed`"), "{e}");
        // A schedule change alongside does not hide a refused one.
        let e = refused(|c| {
            c.steps += 1;
            c.r1_gamma = 1.0;
        });
        assert!(e.contains("`r1_gamma`"), "{e}");
    }

    #[test]
    fn the_first_differing_leaf_is_found_at_any_depth() {
        let a = serde_json::json!({"x": 1, "m": {"p": 1, "q": [1, 2]}});
        assert_eq!(differing_field(&a, &a, ""), None);
        let b = serde_json::json!({"x": 1, "m": {"p": 1, "q": [1, 3]}});
        assert_eq!(differing_field(&a, &b, "").as_deref(), Some("m.q"));
        let c = serde_json::json!({"x": 1, "m": {"q": [1, 2]}});
        assert_eq!(differing_field(&a, &c, "").as_deref(), Some("m.p"));
    }
}
