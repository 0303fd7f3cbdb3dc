//! Ballista wiring: the session state every process shares (codecs, planner), and the
//! embedded or remote cluster a run connects to.

mod codec;
mod connect;
mod planner;
mod session;
mod watch;

pub use codec::{MedallionLogicalCodec, MedallionPhysicalCodec, logical_codec, physical_codec};
pub use connect::connect;
pub use planner::MedallionQueryPlanner;
pub use session::{medallion_session_config, medallion_state, with_settings};
pub use watch::{JobWatch, Progress, SchedulerAddress};
