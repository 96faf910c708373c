use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use loyalty_aws::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    loyalty_aws::logging::init();
    let aws = Aws::from_env().await?;
    run(service_fn(
        |event: LambdaEvent<finalizer::FinalizerEvent>| {
            finalizer::handle_event(&aws, event.payload)
        },
    ))
    .await
}
