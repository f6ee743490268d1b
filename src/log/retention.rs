//! Retention instead of delete-on-consume: records live until they are old enough or the log is
//! big enough, whatever consumers have read.

use serde::{Deserialize, Serialize};

/// `retention.ms` and `retention.bytes` of a topic; `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub max_age_ms: Option<i64>,
    pub max_bytes: Option<u64>,
}

impl RetentionPolicy {
    pub fn is_unlimited(&self) -> bool {
        self.max_age_ms.is_none() && self.max_bytes.is_none()
    }
}
