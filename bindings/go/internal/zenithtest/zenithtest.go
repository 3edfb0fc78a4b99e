// Package zenithtest holds what the binding's tests share: where the test data is and a check
// of every value of a record against tests/data/generate.py, where each value is a function of
// the row id:
//
//	id int64 = row, label int32 = id % 10, value float64 = id * 0.5,
//	name utf8 = "row-<id>" (NULL when id % 7 == 3), flag bool = id % 3 == 0,
//	embedding fixed_size_list<float32>[4] = [id, id + 0.25, id + 0.5, id + 0.75]
//
// CSV files hold the first five columns with the types a CSV reader infers (label as int64).
package zenithtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Rows is the number of rows of basic.arrow and its copies in other formats.
const Rows = 10_000

// DataDir returns $ZENITH_TEST_DATA, or the repository's tests/data/generated (written by
// `make data`); it fails the test when basic.arrow is not there.
func DataDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ZENITH_TEST_DATA")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "tests", "data", "generated")
	}
	if _, err := os.Stat(filepath.Join(dir, "basic.arrow")); err != nil {
		t.Fatalf("test data missing (run `make data` or set ZENITH_TEST_DATA): %v", err)
	}
	return dir
}

// Path returns the path of a file of the test data.
func Path(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(DataDir(t), name)
}

// CheckRecord checks every value of rec against its row id and returns the ids in order.
// Columns may be any subset of the generated ones, in any order, but must include id.
func CheckRecord(rec arrow.RecordBatch) ([]int64, error) {
	idCol := -1
	for i, f := range rec.Schema().Fields() {
		if f.Name == "id" {
			idCol = i
		}
	}
	if idCol < 0 {
		return nil, fmt.Errorf("no id column in %v", rec.Schema())
	}
	ids, err := ints(rec.Column(idCol))
	if err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	for c, f := range rec.Schema().Fields() {
		if err := checkColumn(f.Name, rec.Column(c), ids); err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
	}
	return ids, nil
}

func ints(col arrow.Array) ([]int64, error) {
	out := make([]int64, col.Len())
	for i := range out {
		if col.IsNull(i) {
			return nil, fmt.Errorf("row %d is null", i)
		}
		switch c := col.(type) {
		case *array.Int64:
			out[i] = c.Value(i)
		case *array.Int32:
			out[i] = int64(c.Value(i))
		default:
			return nil, fmt.Errorf("type %v is not an integer", col.DataType())
		}
	}
	return out, nil
}

func checkColumn(name string, col arrow.Array, ids []int64) error {
	if col.Len() != len(ids) {
		return fmt.Errorf("%d rows, want %d", col.Len(), len(ids))
	}
	switch name {
	case "id":
		return nil
	case "label":
		got, err := ints(col)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if got[i] != id%10 {
				return fmt.Errorf("row %d (id %d): %d, want %d", i, id, got[i], id%10)
			}
		}
	case "value":
		c, ok := col.(*array.Float64)
		if !ok {
			return fmt.Errorf("type %v, want float64", col.DataType())
		}
		for i, id := range ids {
			if want := float64(id) * 0.5; c.IsNull(i) || c.Value(i) != want {
				return fmt.Errorf("row %d (id %d): %v, want %v", i, id, c.Value(i), want)
			}
		}
	case "name":
		c, ok := col.(*array.String)
		if !ok {
			return fmt.Errorf("type %v, want utf8", col.DataType())
		}
		for i, id := range ids {
			if id%7 == 3 {
				if !c.IsNull(i) {
					return fmt.Errorf("row %d (id %d): %q, want null", i, id, c.Value(i))
				}
			} else if want := fmt.Sprintf("row-%d", id); c.IsNull(i) || c.Value(i) != want {
				return fmt.Errorf("row %d (id %d): %q (null %v), want %q", i, id, c.Value(i), c.IsNull(i), want)
			}
		}
	case "flag":
		c, ok := col.(*array.Boolean)
		if !ok {
			return fmt.Errorf("type %v, want bool", col.DataType())
		}
		for i, id := range ids {
			if want := id%3 == 0; c.IsNull(i) || c.Value(i) != want {
				return fmt.Errorf("row %d (id %d): %v, want %v", i, id, c.Value(i), want)
			}
		}
	case "embedding":
		c, ok := col.(*array.FixedSizeList)
		if !ok {
			return fmt.Errorf("type %v, want fixed_size_list", col.DataType())
		}
		width := int(c.DataType().(*arrow.FixedSizeListType).Len())
		values, ok := c.ListValues().(*array.Float32)
		if width != 4 || !ok {
			return fmt.Errorf("type %v, want fixed_size_list<float32>[4]", col.DataType())
		}
		for i, id := range ids {
			start, _ := c.ValueOffsets(i)
			for k := 0; k < width; k++ {
				want := float32(id) + float32(k)/4
				if got := values.Value(int(start) + k); got != want {
					return fmt.Errorf("row %d (id %d) element %d: %v, want %v", i, id, k, got, want)
				}
			}
		}
	default:
		return fmt.Errorf("unexpected column")
	}
	return nil
}

// CheckPermutation checks that ids holds each of 0..n-1 exactly once.
func CheckPermutation(ids []int64, n int) error {
	if len(ids) != n {
		return fmt.Errorf("%d ids, want %d", len(ids), n)
	}
	seen := make([]bool, n)
	for _, id := range ids {
		if id < 0 || id >= int64(n) || seen[id] {
			return fmt.Errorf("id %d out of range or repeated", id)
		}
		seen[id] = true
	}
	return nil
}
