//! Where the log stands in each external stream: read back from the newest
//! sealed file of every partition (each file carries every position the log
//! held when it was sealed, see `authtrail_schemas::positions`).

use std::path::Path;

use rayon::prelude::*;

use authtrail_schemas::layout::meta;
use authtrail_schemas::{SourcePositions, Table};

use super::{chain, parquet_io};
use crate::IngestError;

/// The highest position per stream over the newest file of every partition
/// of every table.
pub fn load(root: &Path) -> Result<SourcePositions, IngestError> {
    let mut newest = Vec::new();
    for table in Table::ALL {
        for (_, dir) in chain::list_partitions(root, table)? {
            if let Some(name) = chain::list_sealed(&dir)?.pop() {
                newest.push(dir.join(name));
            }
        }
    }
    let found: Vec<Option<SourcePositions>> = newest
        .par_iter()
        .map(|path| {
            let footer = parquet_io::read_footer(path)?;
            parquet_io::footer_value(&footer, meta::SOURCE_POSITIONS)
                .map(|text| {
                    SourcePositions::from_json(text).map_err(|message| IngestError::Damaged {
                        path: path.clone(),
                        message,
                    })
                })
                .transpose()
        })
        .collect::<Result<_, IngestError>>()?;
    let mut positions = SourcePositions::new();
    for file_positions in found.into_iter().flatten() {
        positions.merge(&file_positions);
    }
    Ok(positions)
}
