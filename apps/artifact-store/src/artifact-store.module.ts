/** The artifact store's Nest module: the HTTP read API over already-opened resources. */
import { Module, type DynamicModule } from '@nestjs/common';
import type { ArtifactRepository } from '@muse/artifacts';
import type { ArtifactContentService } from './artifact-content.service.js';
import type { ArtifactLineageService } from './artifact-lineage.service.js';
import { ArtifactsController } from './artifacts.controller.js';
import { ARTIFACT_CONTENT, ARTIFACT_LINEAGE, ARTIFACT_REPOSITORY } from './artifact-store.tokens.js';

export interface ArtifactStoreResources {
  repo: ArtifactRepository;
  content: ArtifactContentService;
  lineage: ArtifactLineageService;
}

@Module({})
export class ArtifactStoreModule {
  static forRoot(res: ArtifactStoreResources): DynamicModule {
    return {
      module: ArtifactStoreModule,
      controllers: [ArtifactsController],
      providers: [
        { provide: ARTIFACT_REPOSITORY, useValue: res.repo },
        { provide: ARTIFACT_CONTENT, useValue: res.content },
        { provide: ARTIFACT_LINEAGE, useValue: res.lineage },
      ],
    };
  }
}
