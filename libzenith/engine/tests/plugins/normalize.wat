(module
  ;;PRELUDE
  ;; (x - mean) / std, in place, on column 0 (float64, population standard deviation).
  (func (export "zn_transform") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (local $rows i32) (local $data i32) (local $i i32)
    (local $sum f64) (local $mean f64) (local $d f64) (local $std f64)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load (local.get $in)) (i32.const 10)) (then (return (i32.const 2))))
    (local.set $rows (i32.wrap_i64 (i64.load offset=8 (local.get $in))))
    (local.set $data (i32.load offset=40 (local.get $in)))
    (if (i32.eqz (local.get $rows))
      (then (return (call $identity (local.get $in) (local.get $n) (local.get $out)))))
    (local.set $i (i32.const 0))
    (loop $sum_loop
      (local.set $sum (f64.add (local.get $sum)
        (f64.load (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $sum_loop (i32.lt_u (local.get $i) (local.get $rows))))
    (local.set $mean (f64.div (local.get $sum) (f64.convert_i32_u (local.get $rows))))
    (local.set $sum (f64.const 0))
    (local.set $i (i32.const 0))
    (loop $var_loop
      (local.set $d (f64.sub
        (f64.load (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 3))))
        (local.get $mean)))
      (local.set $sum (f64.add (local.get $sum) (f64.mul (local.get $d) (local.get $d))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $var_loop (i32.lt_u (local.get $i) (local.get $rows))))
    (local.set $std (f64.sqrt (f64.div (local.get $sum) (f64.convert_i32_u (local.get $rows)))))
    (local.set $i (i32.const 0))
    (loop $write_loop
      (f64.store (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 3)))
        (f64.div
          (f64.sub
            (f64.load (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 3))))
            (local.get $mean))
          (local.get $std)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write_loop (i32.lt_u (local.get $i) (local.get $rows))))
    (call $identity (local.get $in) (local.get $n) (local.get $out))))
