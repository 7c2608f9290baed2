//! `vkgan devices` run as a user runs it.

use std::process::Command;

fn vkgan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vkgan"))
}

/// Lavapipe's ICD manifest, which the project's setup installs.
fn lavapipe_icd() -> String {
    std::fs::read_dir("/usr/share/vulkan/icd.d")
        .expect("Vulkan ICD manifests in /usr/share/vulkan/icd.d")
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("lvp_icd")
        })
        .expect("lavapipe's manifest (mesa-vulkan-drivers)")
        .display()
        .to_string()
}

/// `vkgan devices` with only lavapipe visible, in the given limits mode.
fn lavapipe_devices(limits: &str) -> String {
    let out = vkgan()
        .arg("devices")
        .env("VK_ICD_FILENAMES", lavapipe_icd())
        .env("VKGAN_LIMITS", limits)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn devices_print_the_limits_in_use_and_the_io_path() {
    let device = lavapipe_devices("device");
    assert!(
        device.contains("limits in use:      the device's"),
        "{device}"
    );
    assert!(
        device.contains("tensor I/O:         texel buffers up to 512 MiB (134217728 texels)"),
        "{device}"
    );
    let minimum = lavapipe_devices("minimum");
    for line in [
        "limits in use:      Vulkan 1.1 minimums (VKGAN_LIMITS=minimum)",
        "max shared memory:  16384 bytes",
        "max workgroup size: 128 x 128 x 64 (128 invocations)",
        "max workgroups:     65535 x 65535 x 65535",
        "max push constants: 128 bytes",
        "tensor I/O:         texel buffers up to 256 KiB (65536 texels), storage buffers up to \
         128 MiB per binding past that",
    ] {
        assert!(minimum.contains(line), "{line:?} missing from\n{minimum}");
    }
    let out = vkgan()
        .arg("devices")
        .env("VKGAN_LIMITS", "smallest")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("VKGAN_LIMITS=\"smallest\"") && err.contains("`minimum`"),
        "{err}"
    );
}

#[test]
fn lists_lavapipe_as_cpu_device_and_a_default() {
    let out = vkgan()
        .arg("devices")
        .env("VK_ICD_FILENAMES", lavapipe_icd())
        .output()
        .unwrap();
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
