// Package zenitharrow converts libzenith batches and streams to arrow-go values through
// arrow-go's C Data Interface package (cdata): no copy of the data, only of the schema.
//
//	batch, err := loader.Next()
//	...
//	rec, err := zenitharrow.Record(batch) // an arrow.RecordBatch sharing the batch's buffers
//	batch.Close()                         // rec stays valid
//	defer rec.Release()
//
// zenith's ArrowArray/ArrowSchema wrappers and cdata's CArrowArray/CArrowSchema are the same
// canonical C structs (each package has its own cgo type for them), so the conversion passes
// the address; cdata moves the array out of the wrapper and the wrapper is then freed.
package zenitharrow

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"

	zenith "github.com/zenith-data/libzenith/bindings/go"
)

// Record exports batch and imports it as an arrow-go record batch. The record shares the
// batch's buffers (zero copy) and keeps them alive after batch.Close; the caller releases it.
func Record(batch *zenith.Batch) (arrow.RecordBatch, error) {
	arr, schema, err := batch.ExportArrow()
	if err != nil {
		return nil, err
	}
	return importRecord(arr, schema)
}

// Next takes the next batch from loader and returns it as a record batch, or io.EOF at the end
// of the epoch. The caller releases the record.
func Next(loader *zenith.Loader) (arrow.RecordBatch, error) {
	batch, err := loader.Next()
	if err != nil {
		return nil, err
	}
	defer batch.Close()
	return Record(batch)
}

// importRecord moves arr into an arrow-go record; the wrappers are freed in any case.
func importRecord(arr *zenith.ArrowArray, schema *zenith.ArrowSchema) (arrow.RecordBatch, error) {
	// ImportCRecordBatch releases the schema and, on success, moves the array out (leaving it
	// released); on failure the array is still ours. Release handles both.
	defer arr.Release()
	defer schema.Release()
	rec, err := cdata.ImportCRecordBatch((*cdata.CArrowArray)(arr.Pointer()),
		(*cdata.CArrowSchema)(schema.Pointer()))
	if err != nil {
		return nil, fmt.Errorf("zenitharrow: importing a batch: %w", err)
	}
	return rec, nil
}

// Schema returns the schema of loader's batches as an arrow-go schema.
func Schema(loader *zenith.Loader) (*arrow.Schema, error) {
	cs, err := loader.Schema()
	if err != nil {
		return nil, err
	}
	defer cs.Release()
	s, err := cdata.ImportCArrowSchema((*cdata.CArrowSchema)(cs.Pointer()))
	if err != nil {
		return nil, fmt.Errorf("zenitharrow: importing the schema: %w", err)
	}
	return s, nil
}

// NewReader exports the rest of loader's current epoch as an Arrow C stream and imports it as
// an arrow-go record reader. The reader consumes the loader's batches (do not call
// loader.Next while reading), may outlive the loader, reads from one goroutine at a time, and
// is released by the caller. Library errors surface through the reader's Err.
func NewReader(loader *zenith.Loader) (array.RecordReader, error) {
	stream, err := loader.ExportStream()
	if err != nil {
		return nil, err
	}
	// ImportCRecordReader moves the stream out; Release then frees only the struct (or the
	// stream too, when the import failed before moving it).
	defer stream.Release()
	rdr, err := cdata.ImportCRecordReader((*cdata.CArrowArrayStream)(stream.Pointer()), nil)
	if err != nil {
		return nil, fmt.Errorf("zenitharrow: importing the stream: %w", err)
	}
	rr, ok := rdr.(array.RecordReader)
	if !ok { // not with arrow-go v18: its C stream reader is a RecordReader
		return nil, fmt.Errorf("zenitharrow: cdata returned a %T, not an array.RecordReader", rdr)
	}
	return rr, nil
}
