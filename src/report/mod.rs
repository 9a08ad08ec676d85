//! Reports: JUnit XML for Jenkins ([`write_junit`], `PERF_JUNIT`) and an HTML page with SVG
//! plots from the results history (`perfsanity report`; its command line is
//! [`crate::app::report_cmd`]).

pub mod html;
pub mod junit;
pub mod plots;

pub use html::{
    ReportError, ReportOptions, ReportSummary, write_html_report, write_html_report_with,
};
pub use junit::{JunitError, junit_report, write_junit};
