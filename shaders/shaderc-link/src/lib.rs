//! Nothing to call: this crate exists for its build script, whose link directives reach every
//! binary that depends on it. vkgan's build script uses it (`use shaderc_link as _;`) so that
//! shaderc's static library finds the glslang symbols it leaves undefined on Debian and Ubuntu.
