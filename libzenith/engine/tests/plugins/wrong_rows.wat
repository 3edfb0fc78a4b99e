(module
  ;;PRELUDE
  (func (export "zn_transform") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (if (call $hostile (local.get $in))
      (then
        ;; Claim one more row than the data holds.
        (i64.store offset=8 (local.get $in)
          (i64.add (i64.load offset=8 (local.get $in)) (i64.const 1)))))
    (call $identity (local.get $in) (local.get $n) (local.get $out))))
