(module
  ;;PRELUDE
  (func (export "zn_transform") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (if (call $hostile (local.get $in))
      (then
        ;; Point column 0 data far outside memory.
        (i32.store offset=40 (local.get $in) (i32.const 0x7fff0000))))
    (call $identity (local.get $in) (local.get $n) (local.get $out))))
