//! The `vkgan` command line.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vkgan::vk;

#[derive(Parser)]
#[command(
    name = "vkgan",
    version,
    about = "StyleGAN2 training and generation on any Vulkan device"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every Vulkan device and mark the one used by default.
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => devices(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let setup = e
                .downcast_ref::<vk::VkError>()
                .is_some_and(vk::VkError::is_setup_problem);
            ExitCode::from(if setup { 2 } else { 1 })
        }
    }
}

fn devices() -> anyhow::Result<()> {
    let (devices, default) = vk::list_devices()?;
    println!(
        "Vulkan devices ({} found; * = default, pick another with --device N):",
        devices.len()
    );
    for d in &devices {
        let mark = if d.index == default { '*' } else { ' ' };
        let (major, minor, patch) = d.api_version;
        let [wx, wy, wz] = d.max_workgroup_size;
        println!("{mark} {}: {}", d.index, d.name);
        println!("     type:               {}", d.kind.label());
        println!("     driver:             {}", d.driver);
        println!("     Vulkan API:         {major}.{minor}.{patch}");
        println!("     subgroup size:      {}", d.subgroup_size);
        println!("     max shared memory:  {} bytes", d.max_shared_memory);
        println!(
            "     max workgroup size: {wx} x {wy} x {wz} ({} invocations)",
            d.max_workgroup_invocations
        );
    }
    Ok(())
}
