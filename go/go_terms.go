package ckpt

import "strings"

// goTerms rewrites the library's advice to C callers ("set it with ckpt_..._set_x") into the
// Go field to set, so a Go caller is never told to call a C function.
var goTerms = strings.NewReplacer(
	"(ckpt_opts_set_console_socket; the command's --console-socket)", "(Options.ConsoleSocket; the command's --console-socket)",
	"(a work path, ckpt_opts_set_work_path; the command's --work-path, keeps it)",
	"(Options.WorkDirectory; the command's --work-path, keeps it)",
	"set it with ckpt_archive_opts_set_spec_path", "set ArchiveOptions.SpecPath",
	"set ckpt_archive_opts_set_new_rootfs or ckpt_archive_opts_set_rootfs_image",
	"set ArchiveOptions.NewRootfs or ArchiveOptions.RootfsImage",
	"call ckpt_container_set_bundle or ckpt_container_set_runtime", "set Container.Bundle, or Container.Runtime and ID",
	"call ckpt_container_set_pid or ckpt_container_set_runtime", "set Container.Pid, or Container.Runtime and ID",
	"(ckpt_container_restore with its bundle; ", "(RestoreContainer with Container.Bundle; ",
	"(ckpt_opts_add_ext_mount)", "(Options.ExtMounts)",
)
