//! Small tools shared by scenarios and the harness: parsing what the child reported, reading
//! `/proc` text, waiting with deadlines, and order statistics.

pub mod child_report;
pub mod proc;
pub mod stats;
pub mod wait;
