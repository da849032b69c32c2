//! Stream reconciliation: create what is missing, bring the settings we own back in line,
//! leave everything else (including every message) as it is.

use async_nats::jetstream::{
    self, ErrorCode,
    context::GetStreamErrorKind,
    stream::{Config, Info},
};

use crate::{
    InitError,
    report::{Entry, Outcome, Resource},
};

/// Makes the stream `wanted.name` exist with the settings of `wanted` that the initializer owns.
pub(crate) async fn reconcile(
    jetstream: &jetstream::Context,
    wanted: &Config,
) -> Result<Entry, InitError> {
    let fail = |action, source| InitError::Stream {
        stream: wanted.name.clone(),
        action,
        source,
    };
    let entry = |outcome, changed| Entry {
        resource: Resource::Stream {
            name: wanted.name.clone(),
        },
        outcome,
        changed,
    };

    let Some(current) = info(jetstream, &wanted.name)
        .await
        .map_err(|e| fail("read", e))?
    else {
        jetstream
            .create_stream(wanted)
            .await
            .map_err(|e| fail("create", e.into()))?;
        return Ok(entry(Outcome::Created, Vec::new()));
    };

    let changed = differences(wanted, &current.config);
    if changed.is_empty() {
        return Ok(entry(Outcome::Unchanged, changed));
    }
    jetstream
        .update_stream(with_owned_fields(current.config, wanted))
        .await
        .map_err(|e| fail("update", e.into()))?;
    Ok(entry(Outcome::Updated, changed))
}

/// The stream's info, or `None` when there is no such stream.
async fn info(
    jetstream: &jetstream::Context,
    name: &str,
) -> Result<Option<Info>, async_nats::Error> {
    match jetstream.get_stream(name).await {
        Ok(stream) => Ok(Some(stream.cached_info().clone())),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(error)
                if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(e.into()),
        },
    }
}

/// The names of the owned settings in which the server's stream differs from `wanted`.
///
/// The server fills in what a request leaves at zero (`num_replicas` 0 means 1, a zero
/// `duplicate_window` means its default), so a zero we ask for matches whatever it chose;
/// otherwise every run after the first would report a change that is not one.
pub(crate) fn differences(wanted: &Config, current: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check(
        "subjects",
        sorted(&wanted.subjects) != sorted(&current.subjects),
    );
    check(
        "description",
        non_empty(&wanted.description) != non_empty(&current.description),
    );
    check("retention", wanted.retention != current.retention);
    check("storage", wanted.storage != current.storage);
    check("discard", wanted.discard != current.discard);
    check(
        "num_replicas",
        wanted.num_replicas.max(1) != current.num_replicas.max(1),
    );
    check("max_age", wanted.max_age != current.max_age);
    check(
        "duplicate_window",
        !wanted.duplicate_window.is_zero() && wanted.duplicate_window != current.duplicate_window,
    );
    changed
}

/// The server's configuration with the owned settings of `wanted` written over it, so an
/// update changes only those and keeps whatever else an operator set (limits, placement, ...).
fn with_owned_fields(mut config: Config, wanted: &Config) -> Config {
    config.subjects.clone_from(&wanted.subjects);
    config.description.clone_from(&wanted.description);
    config.retention = wanted.retention;
    config.storage = wanted.storage;
    config.discard = wanted.discard;
    config.num_replicas = wanted.num_replicas;
    config.max_age = wanted.max_age;
    config.duplicate_window = wanted.duplicate_window;
    config
}

fn sorted(subjects: &[String]) -> Vec<&str> {
    let mut sorted: Vec<&str> = subjects.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

pub(crate) fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
    use nis_queue::{StreamSettings, Topology};

    use super::*;

    fn wanted() -> Config {
        Topology::new("t").streams(&StreamSettings::default())[0].clone()
    }

    /// What a server answers for `wanted`: its limits filled in, zeros replaced by defaults.
    fn as_stored(wanted: &Config) -> Config {
        let mut stored = wanted.clone();
        stored.max_bytes = -1;
        stored.max_messages = -1;
        stored.max_messages_per_subject = -1;
        stored.max_consumers = -1;
        stored.max_message_size = -1;
        stored.num_replicas = stored.num_replicas.max(1);
        if stored.duplicate_window.is_zero() {
            stored.duplicate_window = Duration::from_secs(120);
        }
        stored
    }

    #[test]
    fn what_the_server_filled_in_is_no_change() {
        let wanted = wanted();
        assert!(differences(&wanted, &as_stored(&wanted)).is_empty());

        let mut zeros = wanted.clone();
        zeros.num_replicas = 0;
        zeros.duplicate_window = Duration::ZERO;
        assert!(differences(&zeros, &as_stored(&zeros)).is_empty());

        let mut reordered = as_stored(&wanted);
        reordered.subjects.reverse();
        assert!(differences(&wanted, &reordered).is_empty());
    }

    #[test]
    fn every_owned_setting_is_compared() {
        let wanted = wanted();
        let stored = as_stored(&wanted);
        type Change = fn(&mut Config);
        let cases: Vec<(&str, Change)> = vec![
            ("subjects", |c| c.subjects.push("x.y".into())),
            ("description", |c| c.description = None),
            ("retention", |c| c.retention = RetentionPolicy::WorkQueue),
            ("storage", |c| c.storage = StorageType::Memory),
            ("discard", |c| c.discard = DiscardPolicy::New),
            ("num_replicas", |c| c.num_replicas = 3),
            ("max_age", |c| c.max_age = Duration::from_secs(1)),
            ("duplicate_window", |c| {
                c.duplicate_window = Duration::from_secs(1)
            }),
        ];
        for (field, change) in cases {
            let mut current = stored.clone();
            change(&mut current);
            assert_eq!(differences(&wanted, &current), [field]);
        }
    }

    #[test]
    fn an_update_keeps_what_we_do_not_own() {
        let wanted = wanted();
        let mut current = as_stored(&wanted);
        current.max_age = Duration::from_secs(1);
        current.max_messages = 10_000;
        current.deny_delete = true;
        let next = with_owned_fields(current, &wanted);
        assert_eq!(next.max_age, wanted.max_age);
        assert_eq!(next.max_messages, 10_000);
        assert!(next.deny_delete);
        assert!(differences(&wanted, &next).is_empty());
    }
}
