package testenv

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// DynamoDB returns a client of this moto. moto applies a TransactWriteItems without
// a lock (condition checks, writes, and on failure a rollback to a copy of the whole
// table taken at the start), so concurrent transactions on one table interleave: a
// cancelled one can undo another one's writes or leave its own, and any other request
// that changes or walks the table while the copy is taken fails it with a 500
// ("dictionary changed size during iteration"). DynamoDB isolates transactions
// (serializable), so the client runs each transaction alone, as DynamoDB would apply
// it, while other requests run concurrently with each other; the race itself (who reads
// what, whose condition holds) is untouched.
func (a *AWS) DynamoDB(opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(a.Config, append([]func(*dynamodb.Options){
		AroundEachAttempt("serializeTransactions", serializeTransactions),
	}, opts...)...)
}

var motoTransactions sync.RWMutex

func serializeTransactions(ctx context.Context, send func() error) error {
	if awsmiddleware.GetOperationName(ctx) != "TransactWriteItems" {
		motoTransactions.RLock()
		defer motoTransactions.RUnlock()
		return send()
	}
	motoTransactions.Lock()
	defer motoTransactions.Unlock()
	return send()
}

// AroundEachAttempt returns a client option that runs f around every attempt to send a
// request (in the finalize step after the SDK's retries); send sends it. An error from f
// is the attempt's.
func AroundEachAttempt(name string, f func(ctx context.Context, send func() error) error) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc(name,
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (out middleware.FinalizeOutput, md middleware.Metadata, err error) {
					err = f(ctx, func() error {
						out, md, err = next.HandleFinalize(ctx, in)
						return err
					})
					return out, md, err
				}), middleware.After)
		})
	}
}
