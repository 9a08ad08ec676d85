//! Reports: JUnit XML for Jenkins and an HTML page with SVG plots from the results history.
