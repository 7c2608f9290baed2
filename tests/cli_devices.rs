//! `vkgan devices` run as a user runs it.

use std::process::Command;

fn vkgan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vkgan"))
}

#[test]
fn lists_lavapipe_as_cpu_device_and_a_default() {
    let out = vkgan().arg("devices").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let default_line = text
        .lines()
        .find(|l| l.starts_with('*'))
        .unwrap_or_else(|| panic!("no default device marked:\n{text}"));
    assert!(default_line.contains(": "), "{default_line}");
    for field in [
        "type:",
        "driver:",
        "Vulkan API:",
        "subgroup size:",
        "max shared memory:",
        "max workgroup size:",
    ] {
        assert!(text.contains(field), "missing {field} in\n{text}");
    }
    let llvmpipe = text
        .lines()
        .position(|l| l.contains("llvmpipe"))
        .unwrap_or_else(|| panic!("lavapipe (llvmpipe) not listed:\n{text}"));
    let kind = text.lines().nth(llvmpipe + 1).unwrap();
    assert!(kind.contains("type:") && kind.contains("CPU"), "{kind}");
}

#[test]
fn no_driver_is_a_one_line_error_with_exit_code_2() {
    let out = vkgan()
        .arg("devices")
        .env("VK_ICD_FILENAMES", "/nonexistent/vkgan-test-icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/vkgan-test-icd.json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("no Vulkan device") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
