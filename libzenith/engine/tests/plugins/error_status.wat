(module
  ;;PRELUDE
  (func (export "zn_transform") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (if (call $hostile (local.get $in))
      (then
        ;; Refuse the event with a status of its own.
        (return (i32.const 7))))
    (call $identity (local.get $in) (local.get $n) (local.get $out))))
