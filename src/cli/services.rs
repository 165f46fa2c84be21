//! `taillight services`: list services, or one service's tags.

use clap::Args;

use super::ClientArgs;
use super::{CliError, connect};
use crate::proto::{ListServicesRequest, ListTagsRequest};

#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// List the tags of this service instead.
    #[arg(long)]
    pub tags: Option<String>,
}

pub async fn run(args: ServicesArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let names = match args.tags {
        Some(service) => {
            client
                .list_tags(ListTagsRequest { service })
                .await?
                .into_inner()
                .tags
        }
        None => {
            client
                .list_services(ListServicesRequest {})
                .await?
                .into_inner()
                .services
        }
    };
    for n in names {
        println!("{n}");
    }
    Ok(())
}
