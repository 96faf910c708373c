use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use loyalty_aws::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    loyalty_aws::logging::init();
    let aws = Aws::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        processor::handle(&aws, event.payload)
    }))
    .await
}
