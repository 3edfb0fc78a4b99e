(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  ;;PRELUDE
  (func (export "zn_transform") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (call $identity (local.get $in) (local.get $n) (local.get $out))))
