//! Small tools shared by scenarios: parsing what the child reported, and waiting with deadlines.

pub mod child_report;
pub mod wait;
