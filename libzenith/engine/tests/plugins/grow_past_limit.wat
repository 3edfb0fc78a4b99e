(module
  ;;PRELUDE
  (func (export "zn_transform") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (if (call $hostile (local.get $in))
      (then
        ;; Grow memory by 512 MiB at once, far past the limit; trap when refused.
        (if (i32.eq (memory.grow (i32.const 8192)) (i32.const -1)) (then unreachable))))
    (call $identity (local.get $in) (local.get $n) (local.get $out))))
