//! The envelope a store keeps a run's state in: the state with the workflow and fingerprint
//! of the code that wrote it, and a version, so that a newer format is recognised as such.

/// The version of the JSON envelope in the `runs.state` column.
pub(crate) const ENVELOPE_VERSION: u64 = 1;

/// The envelope as written: borrowed from the checkpoint.
#[derive(serde::Serialize)]
pub(crate) struct EnvelopeRef<'a> {
    pub(crate) v: u64,
    pub(crate) workflow: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) state: &'a serde_json::Value,
}

/// The envelope as read back.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope {
    pub(crate) workflow: String,
    pub(crate) fingerprint: String,
    pub(crate) state: serde_json::Value,
}

/// Reads `{"v":1,"workflow":…,"fingerprint":…,"state":…}`, checking the version first so that a
/// newer envelope is reported as such rather than as a missing field.
pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("`state` is not JSON: {e}"))?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(ENVELOPE_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "envelope version {v}, this version of flow reads {ENVELOPE_VERSION}: \
                 written by a newer flow"
            ));
        }
        None => return Err("`state` is not a checkpoint envelope (no `v`)".to_owned()),
    }
    serde_json::from_value(value).map_err(|e| format!("bad checkpoint envelope: {e}"))
}

/// `checkpoint`'s state in its envelope, as stored: refused if it would not read back (too
/// deep) or is over `max_bytes`; `store` names the store's type for the message that says how
/// to raise its limit (`SqliteStore`, `PgStore`).
pub(crate) fn encode_envelope(
    checkpoint: &crate::store::Checkpoint,
    max_bytes: usize,
    store: &str,
) -> Result<String, crate::error::StoreError> {
    use crate::error::{StoreError, StoreErrorKind};
    // The envelope adds one level, which `MAX_JSON_DEPTH` leaves room for: what is written
    // here, `decode_envelope` reads back.
    if let Some(reason) = crate::state::too_deep(&checkpoint.state) {
        return Err(crate::store::contract::unstorable(
            &checkpoint.run_id,
            &checkpoint.step,
            &reason,
        ));
    }
    let envelope = serde_json::to_string(&EnvelopeRef {
        v: ENVELOPE_VERSION,
        workflow: &checkpoint.workflow,
        fingerprint: &checkpoint.fingerprint,
        state: &checkpoint.state,
    })
    .map_err(|e| {
        StoreError::with_source(
            format!("run `{}`: cannot encode the checkpoint", checkpoint.run_id),
            e,
        )
    })?;
    if envelope.len() > max_bytes {
        return Err(StoreError::of_kind(
            StoreErrorKind::TooLarge,
            format!(
                "run `{}`: {} is {} bytes, over this store's limit of \
                 {max_bytes} bytes; keep large data outside the workflow's state (store a \
                 reference to it), or raise the limit with `{store}::with_max_checkpoint_bytes`",
                checkpoint.run_id,
                crate::store::contract::checkpoint_of(&checkpoint.step),
                envelope.len(),
            ),
        ));
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_versions() {
        assert!(
            decode_envelope(br#"{"v":1,"workflow":"w","fingerprint":"f","state":null}"#).is_ok()
        );
        let newer = decode_envelope(br#"{"v":2,"x":1}"#).err().unwrap();
        assert!(newer.contains("newer flow"), "{newer}");
        let bare = decode_envelope(br#"{"Search":{}}"#).err().unwrap();
        assert!(bare.contains("no `v`"), "{bare}");
        let junk = decode_envelope(b"garbage").err().unwrap();
        assert!(junk.contains("not JSON"), "{junk}");
    }
}
