//! Durable consumer reconciliation: create what is missing, bring the settings we own back in
//! line (a consumer changed by hand is restored), leave everything else as it is.

use async_nats::jetstream::{
    self,
    consumer::{self, IntoConsumerConfig as _, pull},
    context::ConsumerInfoErrorKind,
};

use crate::{
    InitError,
    report::{Entry, Outcome, Resource},
    streams::non_empty,
};

/// Makes the durable consumer `wanted` exist on `stream` with the settings the initializer owns.
pub(crate) async fn reconcile(
    jetstream: &jetstream::Context,
    stream: &str,
    wanted: &pull::Config,
) -> Result<Entry, InitError> {
    let name = wanted.durable_name.clone().unwrap_or_default();
    let fail = |action, source| InitError::Consumer {
        stream: stream.to_owned(),
        consumer: name.clone(),
        action,
        source,
    };
    if name.is_empty() {
        return Err(fail(
            "create",
            "the topology gives it no durable name".into(),
        ));
    }
    let entry = |outcome, changed| Entry {
        resource: Resource::Consumer {
            stream: stream.to_owned(),
            name: name.clone(),
        },
        outcome,
        changed,
    };
    let wanted = wanted.clone().into_consumer_config();

    let Some(current) = info(jetstream, stream, &name)
        .await
        .map_err(|e| fail("read", e))?
    else {
        jetstream
            .create_consumer_on_stream(wanted, stream)
            .await
            .map_err(|e| fail("create", e.into()))?;
        return Ok(entry(Outcome::Created, Vec::new()));
    };

    let changed = differences(&wanted, &current.config);
    if changed.is_empty() {
        return Ok(entry(Outcome::Unchanged, changed));
    }
    jetstream
        .update_consumer_on_stream(with_owned_fields(current.config, &wanted), stream)
        .await
        .map_err(|e| fail("update", e.into()))?;
    Ok(entry(Outcome::Updated, changed))
}

/// The consumer's info, or `None` when the stream has no consumer of that name.
async fn info(
    jetstream: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<Option<consumer::Info>, async_nats::Error> {
    let stream = jetstream.get_stream_no_info(stream).await?;
    match stream.consumer_info(name).await {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The names of the owned settings in which the server's consumer differs from `wanted`.
///
/// A zero we ask for lets the server choose (`ack_wait` 30 s, `max_ack_pending` 1000, and
/// `max_deliver` 0 or -1 both mean "no limit"), so it matches whatever the server stored.
pub(crate) fn differences(
    wanted: &consumer::Config,
    current: &consumer::Config,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("durable_name", wanted.durable_name != current.durable_name);
    check(
        "description",
        non_empty(&wanted.description) != non_empty(&current.description),
    );
    check("ack_policy", wanted.ack_policy != current.ack_policy);
    check(
        "deliver_policy",
        wanted.deliver_policy != current.deliver_policy,
    );
    check(
        "ack_wait",
        !wanted.ack_wait.is_zero() && wanted.ack_wait != current.ack_wait,
    );
    check(
        "max_deliver",
        unlimited_as_minus_one(wanted.max_deliver) != unlimited_as_minus_one(current.max_deliver),
    );
    check(
        "max_ack_pending",
        wanted.max_ack_pending != 0 && wanted.max_ack_pending != current.max_ack_pending,
    );
    changed
}

/// The server's configuration with the owned settings of `wanted` written over it, so an
/// update changes only those (several others, such as `max_waiting`, cannot be changed at all).
fn with_owned_fields(mut config: consumer::Config, wanted: &consumer::Config) -> consumer::Config {
    config.durable_name.clone_from(&wanted.durable_name);
    config.description.clone_from(&wanted.description);
    config.ack_policy = wanted.ack_policy;
    config.deliver_policy = wanted.deliver_policy;
    config.ack_wait = wanted.ack_wait;
    config.max_deliver = wanted.max_deliver;
    config.max_ack_pending = wanted.max_ack_pending;
    config
}

fn unlimited_as_minus_one(limit: i64) -> i64 {
    if limit <= 0 { -1 } else { limit }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
    use nis_queue::Topology;

    use super::*;

    fn wanted() -> consumer::Config {
        Topology::new("t")
            .consumer("students")
            .1
            .into_consumer_config()
    }

    /// What a server answers for `wanted`: its defaults filled in.
    fn as_stored(wanted: &consumer::Config) -> consumer::Config {
        let mut stored = wanted.clone();
        stored.name.clone_from(&wanted.durable_name);
        stored.max_waiting = 512;
        stored.num_replicas = 0;
        if stored.ack_wait.is_zero() {
            stored.ack_wait = Duration::from_secs(30);
        }
        if stored.max_deliver == 0 {
            stored.max_deliver = -1;
        }
        if stored.max_ack_pending == 0 {
            stored.max_ack_pending = 1000;
        }
        stored
    }

    #[test]
    fn what_the_server_filled_in_is_no_change() {
        let wanted = wanted();
        assert!(differences(&wanted, &as_stored(&wanted)).is_empty());

        let mut zeros = wanted.clone();
        zeros.ack_wait = Duration::ZERO;
        zeros.max_deliver = 0;
        zeros.max_ack_pending = 0;
        assert!(differences(&zeros, &as_stored(&zeros)).is_empty());
    }

    #[test]
    fn every_owned_setting_is_compared() {
        let wanted = wanted();
        let stored = as_stored(&wanted);
        type Change = fn(&mut consumer::Config);
        let cases: Vec<(&str, Change)> = vec![
            ("durable_name", |c| c.durable_name = Some("x".into())),
            ("description", |c| c.description = Some("x".into())),
            ("ack_policy", |c| c.ack_policy = AckPolicy::All),
            ("deliver_policy", |c| c.deliver_policy = DeliverPolicy::New),
            ("ack_wait", |c| c.ack_wait = Duration::from_secs(1)),
            ("max_deliver", |c| c.max_deliver = -1),
            ("max_ack_pending", |c| c.max_ack_pending = 5),
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
        current.max_ack_pending = 5;
        current.max_waiting = 64;
        let next = with_owned_fields(current, &wanted);
        assert_eq!(next.max_ack_pending, wanted.max_ack_pending);
        assert_eq!(next.max_waiting, 64);
        assert!(differences(&wanted, &next).is_empty());
    }
}
