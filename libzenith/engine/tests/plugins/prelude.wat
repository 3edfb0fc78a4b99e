  ;; Shared by the test plugins: one memory, a bump allocator, and its reset after each event.
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "zn_alloc") (param $size i32) (param $align i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                  (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))
  (func (export "zn_reset") (global.set $heap (i32.const 1024)))
  ;; The output is the input: n columns at the input descriptors.
  (func $identity (param $in i32) (param $n i32) (param $out i32) (result i32)
    (i32.store offset=8 (local.get $out) (local.get $n))
    (i32.store offset=12 (local.get $out) (local.get $in))
    (i32.const 0))
  ;; True when column 0 is float64 and its first value is negative: the hostile plugins misbehave
  ;; only then, so the same stage serves good events before and after a bad one.
  (func $hostile (param $in i32) (result i32)
    (if (result i32) (i32.eq (i32.load (local.get $in)) (i32.const 10))
      (then (f64.lt (f64.load (i32.load offset=40 (local.get $in))) (f64.const 0)))
      (else (i32.const 0))))
