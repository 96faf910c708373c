use lambda_http::{run, service_fn, Error, Request};
use loyalty_aws::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    loyalty_aws::logging::init();
    let aws = Aws::from_env().await?;
    run(service_fn(|request: Request| api::handle(&aws, request))).await
}
