package awsstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// maxInlinePayload is the largest compressed payload kept in the item. DynamoDB items hold
// at most 400 KB, names and all other attributes included; the rest of a delivery item is
// well under a kilobyte.
const maxInlinePayload = 350 << 10

const encodingGzip = "gzip"

// putPayload sets the compressed payload on item, or puts it into S3 and sets a reference
// when it is too large for the item.
func (s *Store) putPayload(ctx context.Context, rec *delivery.Record, item map[string]types.AttributeValue) error {
	compressed, err := compress(rec.Payload)
	if err != nil {
		return fmt.Errorf("compress payload of delivery %s: %w", keyString(rec.Key), err)
	}
	item[attrPayloadEncoding] = stringValue(encodingGzip)
	if len(compressed) <= maxInlinePayload {
		item[attrPayload] = &types.AttributeValueMemberB{Value: compressed}
		return nil
	}
	key := payloadKey(rec)
	_, err = s.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      &s.bucket,
		Key:         &key,
		Body:        bytes.NewReader(compressed),
		ContentType: aws.String("application/gzip"),
	})
	if err != nil {
		return fmt.Errorf("store payload of delivery %s: %w", keyString(rec.Key), err)
	}
	item[attrPayloadRef] = stringValue(key)
	return nil
}

// payloadKey names the S3 object of a payload. The object is written before the conditional
// put that decides whether rec is new, so a duplicate of an existing delivery also writes
// one: naming it by the payload's hash keeps it from overwriting the existing record's
// payload when the two differ. A duplicate that loses leaves an object no item refers to;
// the bucket's lifecycle rule removes it with the others.
func payloadKey(rec *delivery.Record) string {
	sum := sha256.Sum256(rec.Payload)
	return "payloads/" + rec.HookID + "/" + rec.DeliveryID + "/" + hex.EncodeToString(sum[:]) + ".json.gz"
}

// payload returns the decompressed payload of an item, from S3 when the item refers to it.
func (s *Store) payload(ctx context.Context, item map[string]types.AttributeValue) ([]byte, error) {
	if enc := stringAttr(item, attrPayloadEncoding); enc != encodingGzip {
		return nil, fmt.Errorf("unknown payload encoding %q", enc)
	}
	ref := stringAttr(item, attrPayloadRef)
	if ref == "" {
		inline, _ := item[attrPayload].(*types.AttributeValueMemberB)
		if inline == nil {
			return nil, fmt.Errorf("item has neither %s nor %s", attrPayload, attrPayloadRef)
		}
		return decompress(bytes.NewReader(inline.Value))
	}
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &ref})
	if err != nil {
		return nil, fmt.Errorf("get payload %s: %w", ref, err)
	}
	defer out.Body.Close()
	payload, err := decompress(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read payload %s: %w", ref, err)
	}
	return payload, nil
}

// A gzip.Writer allocates most of a megabyte of compressor state; reuse them rather than
// have every delivery pay for one.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

func compress(p []byte) ([]byte, error) {
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	var buf bytes.Buffer
	zw.Reset(&buf)
	defer zw.Reset(io.Discard) // let the pool keep the writer, not the last payload
	if _, err := zw.Write(p); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decompress(r io.Reader) ([]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
