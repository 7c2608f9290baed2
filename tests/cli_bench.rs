//! `vkgan bench` run as a user (and scripts/bench_compare.py) runs it.

use std::process::Command;

#[test]
fn bench_json_is_one_line_and_profile_goes_to_stderr() {
    let out = Command::new(env!("CARGO_BIN_EXE_vkgan"))
        .args(["bench", "--json", "--profile", "--steps", "1"])
        .args(["--image-size", "8", "--batch", "4", "--d-latent", "16"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert!(json["device"].is_string(), "{json}");
    for key in ["plain_img_per_s", "regularized_img_per_s"] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{json}");
    }
    assert!(json["peak_device_bytes"].as_u64().unwrap() > 0, "{json}");
    // The four fields the comparison reads come first, in this order.
    let at = |key: &str| lines[0].find(&format!("\"{key}\":")).unwrap();
    let order = [
        "device",
        "plain_img_per_s",
        "regularized_img_per_s",
        "peak_device_bytes",
        "driver",
    ];
    assert_eq!(at(order[0]), 1, "{}", lines[0]);
    assert!(
        order.windows(2).all(|w| at(w[0]) < at(w[1])),
        "{}",
        lines[0]
    );
    assert!(
        stderr.contains("kernel") && stderr.contains("total"),
        "{stderr}"
    );
}

#[test]
fn bench_rejects_an_invalid_size() {
    let out = Command::new(env!("CARGO_BIN_EXE_vkgan"))
        .args(["bench", "--image-size", "12"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}
