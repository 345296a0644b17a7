#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_scrape::expfmt::{parse_format, Format, ParseOptions};

fuzz_target!(|data: &[u8]| {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        for strict in [false, true] {
            let opts = ParseOptions { fallback: None, strict_openmetrics: strict };
            let _ = parse_format(data, format, 0, &opts);
        }
    }
});
