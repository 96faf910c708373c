use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use loyalty_aws::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    loyalty_aws::logging::init();
    let aws = Aws::from_env().await?;
    run(service_fn(
        |event: LambdaEvent<finalizer::FinalizerEvent>| {
            let deadline = loyalty_aws::deadline_of(event.context.deadline);
            finalizer::handle_event_until(&aws, event.payload, deadline)
        },
    ))
    .await
}
